/**
 * The storage server's HTTP transport: `node:http` (llhttp) parses and frames every request; this module
 * only adds what a fenced store needs above it.
 * - Whole requests: the body is read (bounded) before the handler runs, so handlers are plain functions
 *   of a complete request.
 * - Refusals in one format: Node's own 400/408/413/431 (`clientError`), a missing or doubled `Host`, too
 *   many header lines and a bad `Expect` are answered with the owner's problem+json, and the connection
 *   is closed after the replies owed to the requests before the bad one.
 * - Backpressure per connection: its requests are handled one at a time, in order (a pipelined read
 *   sees the writes before it), and the next one starts only once the previous reply has been handed
 *   to the kernel in full and the socket does not need to drain. The requests Node parsed meanwhile wait
 *   in order, and the socket is not read until they have started. A client that never reads its
 *   replies, or floods before authenticating, holds one reply and one socket read of parsed requests
 *   (a few KB each); over all connections at most `MAX_WAITING` wait, and a backlog runs
 *   `BACKLOG_PER_TURN` (in `connection.ts`) at a time so it cannot starve other connections.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  validateHeaderName,
  validateHeaderValue,
} from "node:http";
import type { Socket } from "node:net";
import { CLOSING_GRACE_MS, Connection, type ConnectionOwner, type Exchange, rawReply } from "./connection.js";

/** A whole request: head and body, received before the handler runs. */
export interface Http1Request {
  readonly method: string;
  /** The request target as sent (origin form: path and query), bytes above 0x7f as latin1 characters. */
  readonly url: string;
  readonly httpVersion: string;
  /** Header values by lower-case name; repeated headers joined with ", " (`set-cookie` aside). */
  readonly headers: Readonly<Record<string, string>>;
  /** The body; empty when there is none or when `bodyTooLarge`. */
  readonly body: Buffer;
  /**
   * The body was over the handler's limit (`TransportOptions.bodyLimit`). It was not kept; the handler
   * should refuse with 413. If it was also over `discardLimit` it was not read to its end, and the
   * connection closes after the reply.
   */
  readonly bodyTooLarge: boolean;
}

/** Why the transport refused a request before any handler saw it. */
export type ProtocolFault =
  | "bad-request"
  | "headers-too-large"
  | "payload-too-large"
  | "timeout"
  | "expectation-failed";

/** A reply body the transport sends by itself, worded by its owner (`TransportOptions.refusal`). */
export interface Refusal {
  contentType: string;
  body: string;
}

/** How the transport behaves. */
export interface TransportOptions {
  /** Answers one request, by calling `res.send` exactly once (or `res.destroy`). */
  handler(req: Http1Request, res: Http1Response): void | Promise<void>;
  /** The largest body the handler takes for this method and target. */
  bodyLimit(method: string, url: string): number;
  /** A body over `bodyLimit` but within this is read and dropped, so the connection survives the 413. */
  discardLimit: number;
  /** The body of the transport's own refusals (its status comes from the fault). */
  refusal(fault: ProtocolFault, detail: string): Refusal;
  /** Largest request head (request line and headers), in bytes; default 16 KiB. */
  maxHeaderBytes?: number;
  /** Most header lines in one request; default 100. */
  maxHeaders?: number;
  /** Time from a request's first byte to the end of its headers; default 10 s. */
  headersTimeoutMs?: number;
  /** Time from a request's first byte to the end of its body; default 30 s. */
  requestTimeoutMs?: number;
  /** How long a connection may sit idle between requests; default 5 s. */
  keepAliveTimeoutMs?: number;
}
/**
 * Parsed requests waiting for their turn, over all connections. Node parses a whole socket read before
 * the socket can be held, so each waiting request costs its request and reply objects (several KB);
 * past this many, the connection with the longest backlog is cut (about 16 MB in all).
 */
const MAX_WAITING = 2048;

/** The reply to one request. */
export class Http1Response {
  private extra: string[] = [];
  private sent = false;
  private close = false;
  /** The status sent; 0 until `send`. */
  statusCode = 0;

  /** @internal */
  constructor(
    private readonly res: ServerResponse,
    private readonly conn: Connection,
  ) {}

  /** Whether the reply has been sent (or the connection destroyed). */
  get headersSent(): boolean {
    return this.sent;
  }

  /**
   * Adds a header to the reply (`Connection: close` closes the connection after it). Throws on a name
   * or value that could split the reply; a second call with the same name adds a second line.
   */
  setHeader(name: string, value: string | number): void {
    const text = String(value);
    if (name.toLowerCase() === "connection") {
      if (/\bclose\b/i.test(text)) this.close = true;
      return;
    }
    // node:http checks the head only when it is written; refuse here, where the caller can see why.
    validateHeaderName(name);
    validateHeaderValue(name, text);
    this.extra.push(name, text);
  }

  /** Sends the reply: status, headers and body. A second call does nothing. */
  send(status: number, contentType: string, body: string | Buffer): void {
    if (this.sent) return;
    this.sent = true;
    this.statusCode = status;
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
    const headers = ["Content-Type", contentType, "Content-Length", String(length), ...this.extra];
    if (this.close || this.conn.owner.draining) headers.push("Connection", "close");
    this.res.writeHead(status, headers);
    this.res.end(body);
  }

  /** Drops the connection without a reply (when a reply can no longer be trusted). */
  destroy(): void {
    this.sent = true;
    this.res.destroy();
  }
}

/** The HTTP server of the storage: `node:http`, whole requests, refusals, backpressure. */
export class HttpTransport implements ConnectionOwner {
  /** The `node:http` server. */
  readonly server: Server;
  private readonly options: TransportOptions;
  private readonly connections = new WeakMap<Socket, Connection>();
  /** Connections with requests waiting, and how many wait in all. */
  private readonly backlogged = new Set<Connection>();
  private waitingTotal = 0;
  private readonly maxHeaders: number;
  private closing: Promise<void> | undefined;
  private isDraining = false;

  constructor(options: TransportOptions) {
    this.options = options;
    this.maxHeaders = options.maxHeaders ?? 100;
    const requestTimeout = options.requestTimeoutMs ?? 30_000;
    // node:http wants the headers' time within the request's.
    const headersTimeout = Math.min(options.headersTimeoutMs ?? 10_000, requestTimeout);
    this.server = createServer({
      maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
      headersTimeout,
      requestTimeout,
      // How often Node looks for requests over those two timeouts; its default (30 s) lets them slip.
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(headersTimeout / 4))),
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
      // Repeated headers are joined, never silently dropped: two Authorization or Host headers become
      // one value that no check accepts, instead of the first one winning.
      joinDuplicateHeaders: true,
      // A missing Host is refused here, as problem+json; Node's own 400 has no body.
      requireHostHeader: false,
    });
    // One more than the limit, so a request over it can be told from one at it.
    this.server.maxHeadersCount = this.maxHeaders + 1;
    // The client may send its requests, close its side, and still read every reply.
    (this.server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.server.on("connection", (socket: Socket) => {
      const conn = new Connection(socket, this);
      this.connections.set(socket, conn);
      socket.once("close", () => conn.cut());
    });
    this.server.on("request", (req: IncomingMessage, res: ServerResponse) => this.arrive(req, res, false));
    this.server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) =>
      this.arrive(req, res, true),
    );
    this.server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
      const conn = this.connections.get(req.socket);
      const ex: Exchange = { req, res, expectContinue: false };
      if (conn === undefined) return res.destroy();
      conn.latest = ex;
      conn.refuseExchange(ex, "expectation-failed", "the only expectation understood is 100-continue");
    });
    // CONNECT would hand the socket over as a tunnel; nothing here serves one.
    this.server.on("connect", (_req: IncomingMessage, socket: Socket) => {
      // node:http has let go of the socket, its error handler included: an error must not go unheard.
      socket.on("error", () => socket.destroy());
      const r = this.refusal("bad-request", "CONNECT is not served here");
      socket.end(rawReply(400, r));
      setTimeout(() => socket.destroy(), CLOSING_GRACE_MS).unref();
    });
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) =>
      this.clientError(err, socket),
    );
  }

  /** Whether `close` has begun. */
  get draining(): boolean {
    return this.isDraining;
  }

  /**
   * Stops accepting connections, closes idle ones, lets each request under way get its reply (with
   * `Connection: close`), and resolves once every connection is closed, cutting what is left after
   * `graceMs`. A second call returns the same promise.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.isDraining = true;
      if (!this.server.listening) {
        resolve();
        return;
      }
      const force = setTimeout(() => this.server.closeAllConnections(), graceMs);
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.server.closeIdleConnections();
    });
    return this.closing;
  }

  /** @internal The body of a refusal, worded by the owner of the transport. */
  refusal(fault: ProtocolFault, detail: string): Refusal {
    return this.options.refusal(fault, detail);
  }

  /** @internal Counts requests that start or stop waiting on `conn`; sheds the worst backlog if too many. */
  waited(conn: Connection, delta: number): void {
    if (delta === 0) return;
    this.waitingTotal += delta;
    if (conn.backlog > 0) this.backlogged.add(conn);
    else this.backlogged.delete(conn);
    if (this.waitingTotal <= MAX_WAITING) return;
    let worst = conn;
    for (const c of this.backlogged) if (c.backlog > worst.backlog) worst = c;
    worst.cut();
  }

  private arrive(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const conn = this.connections.get(req.socket);
    if (conn === undefined) {
      res.destroy();
      return;
    }
    // After a refusal the connection only finishes what came before it.
    if (conn.refused) return;
    const ex: Exchange = { req, res, expectContinue };
    if (req.rawHeaders.length > this.maxHeaders * 2) {
      conn.latest = ex;
      conn.refuseExchange(ex, "headers-too-large", `more than ${this.maxHeaders} header lines`);
      return;
    }
    if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
      conn.latest = ex;
      conn.refuseExchange(ex, "bad-request", "this server speaks HTTP/1.1 and HTTP/1.0 only");
      return;
    }
    if (req.url?.startsWith("/") !== true) {
      conn.latest = ex;
      conn.refuseExchange(ex, "bad-request", "the request target must be a path starting with /");
      return;
    }
    const te = req.headers["transfer-encoding"];
    if (te !== undefined && (req.httpVersionMinor === 0 || te.toLowerCase() !== "chunked")) {
      // A coding we would not undo, or chunked where HTTP/1.0 has no chunking (RFC 9112 §6.1): the
      // body's framing cannot be trusted.
      conn.latest = ex;
      conn.refuseExchange(ex, "bad-request", "the only transfer coding accepted is chunked, in HTTP/1.1");
      return;
    }
    const host = req.headers.host;
    if (req.httpVersionMinor === 1 && host === undefined) {
      conn.latest = ex;
      conn.refuseExchange(ex, "bad-request", "an HTTP/1.1 request needs a Host header");
      return;
    }
    if (host?.includes(",")) {
      conn.latest = ex;
      conn.refuseExchange(ex, "bad-request", "more than one Host header");
      return;
    }
    conn.arrive(ex);
  }

  /** @internal Reads the body of a request whose turn has come, then hands it to the handler. */
  start(ex: Exchange, conn: Connection): void {
    const { req, res } = ex;
    const method = req.method as string;
    const url = req.url as string;
    const limit = this.options.bodyLimit(method, url);
    const declared = req.headers["content-length"];
    const declaredSize = declared === undefined ? 0 : Number(declared);
    if (declaredSize > this.options.discardLimit || (ex.expectContinue && declaredSize > limit)) {
      // Not worth reading (or the client waits to be told): refuse now; the connection closes after.
      this.dispatch(ex, conn, Buffer.alloc(0), true, true);
      return;
    }
    if (declaredSize === 0 && req.headers["transfer-encoding"] === undefined) {
      this.dispatch(ex, conn, Buffer.alloc(0), false, false);
      return;
    }
    if (ex.expectContinue) res.writeContinue();
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      ex.abandon = undefined;
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > this.options.discardLimit) {
        done();
        this.dispatch(ex, conn, Buffer.alloc(0), true, true);
      }
    };
    const onEnd = () => {
      done();
      if (size > limit) this.dispatch(ex, conn, Buffer.alloc(0), true, false);
      else {
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        this.dispatch(ex, conn, body, false, false);
      }
    };
    // The client went away before the body ended: nobody to answer.
    const onGone = () => done();
    ex.abandon = done;
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
  }

  /** Hands the complete request to the handler. */
  private dispatch(ex: Exchange, conn: Connection, body: Buffer, tooLarge: boolean, close: boolean): void {
    const { req, res } = ex;
    const reply = new Http1Response(res, conn);
    if (close) reply.setHeader("Connection", "close");
    const request: Http1Request = {
      method: req.method as string,
      url: req.url as string,
      httpVersion: req.httpVersion,
      headers: req.headers as Record<string, string>,
      body,
      bodyTooLarge: tooLarge,
    };
    let result: void | Promise<void>;
    try {
      result = this.options.handler(request, reply);
    } catch {
      if (!reply.headersSent) reply.destroy();
      return;
    }
    if (result instanceof Promise) {
      result.catch(() => {
        if (!reply.headersSent) reply.destroy();
      });
    }
  }

  /** Node's parser refused the input, a request timed out, or the socket failed. */
  private clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const conn = this.connections.get(socket);
    if (conn === undefined || conn.refused || !socket.writable) {
      // Later errors of a refused connection are the rest of its input; it is read and dropped.
      if (conn === undefined || !socket.writable) socket.destroy();
      return;
    }
    const code = err.code ?? "";
    if (code === "HPE_CLOSED_CONNECTION") {
      // Bytes after a request that closes the connection: they are not answered.
      conn.refuseQuietly();
      return;
    }
    if (code === "ERR_HTTP_REQUEST_TIMEOUT" && socket.bytesRead === 0) {
      // A connection that never sent a byte gets no reply, only the close.
      socket.destroy();
      return;
    }
    const [fault, detail] = describe(err);
    const latest = conn.latest;
    if (latest !== undefined && !latest.req.complete) conn.refuseExchange(latest, fault, detail);
    else conn.refuseRaw(fault, detail);
  }
}

/** The fault and a sentence for an error of node:http's parser or timers. */
function describe(err: NodeJS.ErrnoException & { reason?: string }): [ProtocolFault, string] {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return ["headers-too-large", "the request line and headers are over the limit"];
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return ["payload-too-large", "chunk extensions over the limit"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return ["timeout", "the request was not received in time"];
    default: {
      const why = err.reason ?? err.message;
      return ["bad-request", `the request is not valid HTTP/1.1 (${err.code}: ${why})`];
    }
  }
}
