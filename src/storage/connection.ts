/**
 * One client connection of the storage's HTTP transport (`transport.ts`): its requests run one at a
 * time and in order, the socket is held (not read) while parsed requests wait, and a refusal goes out
 * after the replies owed to the requests before it.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { ProtocolFault, Refusal } from "./transport.js";

/** The status of each fault. */
const FAULT_STATUS: Record<ProtocolFault, number> = {
  "bad-request": 400,
  "headers-too-large": 431,
  "payload-too-large": 413,
  timeout: 408,
  "expectation-failed": 417,
};

/** Pipelined requests of one connection started in one turn of the event loop. */
const BACKLOG_PER_TURN = 32;
/** How long a refused connection may take to read its last replies before it is cut. */
export const CLOSING_GRACE_MS = 2000;

/** A request Node has parsed, and its reply. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Whether the client sent `Expect: 100-continue`. */
  readonly expectContinue: boolean;
  /** Ends the wait for the body when the request turned out malformed (its reply is a refusal). */
  abandon?: () => void;
}

/** What a connection needs from the transport that owns it. */
export interface ConnectionOwner {
  /** Whether the server is closing (replies then close their connection). */
  readonly draining: boolean;
  /** The body of a refusal. */
  refusal(fault: ProtocolFault, detail: string): Refusal;
  /** Reads the body of `ex`, whose turn has come, and hands it to the handler. */
  start(ex: Exchange, conn: Connection): void;
  /** Counts requests that start (`delta` > 0) or stop waiting on `conn`. */
  waited(conn: Connection, delta: number): void;
}

/**
 * One client connection: the requests Node parsed that wait for their turn, and the flow control over
 * its socket. Holding the socket uses node:http's own pause flag (`_paused`), the one its
 * pipelining guard sets, so that reading a request body or finishing a reply does not resume reading
 * behind our back; releasing undoes exactly what that guard's release does.
 */
export class Connection {
  /** A request is being handled, or its reply is not yet all in the kernel. */
  private busy = false;
  private readonly waiting: Exchange[] = [];
  private held = false;
  /** The last request Node parsed (its body may still be arriving). */
  latest: Exchange | undefined;
  /** A refusal was decided: nothing more is read or started. */
  refused = false;
  private rawRefusal: string | undefined;
  private pumpSoon: NodeJS.Immediate | undefined;
  private startedThisTurn = 0;

  constructor(
    readonly socket: Socket,
    readonly owner: ConnectionOwner,
  ) {
    socket.setNoDelay(true);
    socket.on("drain", () => this.pump());
  }

  /** A request was parsed: start it now, or queue it and stop reading the socket. */
  arrive(ex: Exchange): void {
    this.latest = ex;
    if (this.refused) return;
    if (this.waiting.length === 0 && this.canStart()) {
      this.start(ex);
      return;
    }
    this.waiting.push(ex);
    this.owner.waited(this, 1);
    this.hold();
  }

  /** How many requests wait. */
  get backlog(): number {
    return this.waiting.length;
  }

  /** Cuts the connection and forgets what waits on it (their clients are gone with it). */
  cut(): void {
    const dropped = this.waiting.length;
    this.waiting.length = 0;
    this.owner.waited(this, -dropped);
    this.socket.destroy();
  }

  /** Answers `ex` with a refusal and closes the connection after it. */
  refuseExchange(ex: Exchange, fault: ProtocolFault, detail: string): void {
    this.refuse();
    ex.abandon?.();
    const index = this.waiting.indexOf(ex);
    if (index !== -1) {
      this.waiting.splice(index, 1);
      this.owner.waited(this, -1);
    }
    const r = this.owner.refusal(fault, detail);
    const body = Buffer.from(r.body);
    const status = FAULT_STATUS[fault];
    if (ex.res.headersSent) {
      ex.res.destroy();
      return;
    }
    ex.res.writeHead(status, [
      "Content-Type",
      r.contentType,
      "Content-Length",
      String(body.length),
      "Connection",
      "close",
    ]);
    ex.res.end(body);
  }

  /**
   * Refuses the request whose head node:http could not parse. The requests before it get their replies
   * first; then the refusal, then the close.
   */
  refuseRaw(fault: ProtocolFault, detail: string): void {
    this.refuse();
    const r = this.owner.refusal(fault, detail);
    this.rawRefusal = rawReply(FAULT_STATUS[fault], r);
    this.pump();
  }

  /** Closes a connection quietly: nothing more is answered (after the replies under way). */
  refuseQuietly(): void {
    this.refuse();
    this.pump();
  }

  /**
   * Marks the connection refused: nothing more is read (node:http would go on parsing requests that
   * are never answered), and it is cut if its client has not closed after the grace time.
   */
  private refuse(): void {
    this.refused = true;
    this.hold();
    setTimeout(() => this.socket.destroy(), CLOSING_GRACE_MS).unref();
  }

  /** Starts the next waiting request if the connection allows; then reads on, or finishes. */
  pump(): void {
    if (this.pumpSoon !== undefined) {
      clearImmediate(this.pumpSoon);
      this.pumpSoon = undefined;
    }
    if (this.socket.destroyed) return;
    if (this.waiting.length > 0 && this.canStart()) {
      const next = this.waiting.shift() as Exchange;
      this.owner.waited(this, -1);
      this.start(next);
    }
    if (this.waiting.length > 0) {
      // node:http may have resumed reading on `drain`; requests still wait, so hold on.
      this.hold();
      return;
    }
    this.startedThisTurn = 0;
    if (this.rawRefusal !== undefined) {
      if (!this.busy) {
        const bytes = this.rawRefusal;
        this.rawRefusal = undefined;
        this.socket.end(bytes);
      }
      return;
    }
    if (!this.refused) this.release();
  }

  private canStart(): boolean {
    return !this.busy && !this.socket.writableNeedDrain;
  }

  private start(ex: Exchange): void {
    this.busy = true;
    // `close` follows `finish`, which node:http emits once the reply's last byte is in the kernel: a
    // client that does not read keeps it from coming, and so keeps its next request waiting.
    ex.res.once("close", () => {
      this.busy = false;
      // A connection's backlog of pipelined requests gets `BACKLOG_PER_TURN` at a time, then waits for
      // the next turn of the event loop, so it cannot keep the loop from every other connection.
      if (this.waiting.length > 0 && ++this.startedThisTurn >= BACKLOG_PER_TURN) {
        this.pumpSoon ??= setImmediate(() => {
          this.startedThisTurn = 0;
          this.pump();
        });
      } else this.pump();
    });
    this.owner.start(ex, this);
  }

  /** Stops reading the socket (again: node:http's `drain` handler may have resumed it meanwhile). */
  private hold(): void {
    this.held = true;
    const s = this.socket as Socket & { _paused?: boolean };
    if (s._paused) return;
    s._paused = true;
    s.pause();
  }

  /** Reads on, unless node:http's own guard wants the socket paused until it drains. */
  private release(): void {
    if (!this.held) return;
    this.held = false;
    const s = this.socket as Socket & { _paused?: boolean; parser?: { resume(): void } | null };
    if (!s._paused || s.writableNeedDrain) return;
    s._paused = false;
    s.parser?.resume();
    s.resume();
  }
}

/**
 * A whole reply with `Connection: close`, for a connection node:http no longer frames replies on (its
 * parser failed, or the socket was handed over).
 */
export function rawReply(status: number, r: Refusal): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${r.contentType}\r\n` +
    `Content-Length: ${Buffer.byteLength(r.body)}\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Connection: close\r\n\r\n${r.body}`
  );
}
