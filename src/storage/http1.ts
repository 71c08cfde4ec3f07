/**
 * A small, strict HTTP/1.1 server on `node:net` for the storage server. On this kind of machine
 * `node:http` costs about 30 µs of CPU per request, more than a fenced write itself; this server parses
 * what the storage API needs (Content-Length and chunked bodies, keep-alive, pipelining,
 * `Expect: 100-continue`) and answers each request with one write. Whatever it does not understand is
 * refused and the connection closed: a lenient parser in front of a store is how requests get smuggled.
 */
import { STATUS_CODES } from "node:http";
import { createServer, type Server, type Socket } from "node:net";

/** A whole request: head and body, received before the handler runs. */
export interface Http1Request {
  readonly method: string;
  /** The request target as sent (origin form: path and query), bytes above 0x7f as latin1 characters. */
  readonly url: string;
  readonly httpVersion: "1.0" | "1.1";
  /** Header values by lower-case name, as latin1 text; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The body; empty when there is none or when `bodyTooLarge`. */
  readonly body: Buffer;
  /**
   * The body was over the handler's limit (`Http1Options.bodyLimit`). It was not kept; the handler
   * should refuse with 413. If it was also over `discardLimit` it was not even read, and the connection
   * closes after the reply.
   */
  readonly bodyTooLarge: boolean;
}

/** Why the server refused a request before any handler saw it. */
export type ProtocolFault = "bad-request" | "headers-too-large" | "timeout" | "expectation-failed";

/** A reply body the server sends by itself, worded by its owner (`Http1Options.refusal`). */
export interface Refusal {
  contentType: string;
  body: string;
}

/** How the server behaves. */
export interface Http1Options {
  /** Answers one request, by calling `res.send` exactly once (or `res.destroy`). */
  handler(req: Http1Request, res: Http1Response): void | Promise<void>;
  /** The largest body the handler takes for this method and target. */
  bodyLimit(method: string, url: string): number;
  /** A body over `bodyLimit` but within this is read and dropped, so the connection survives the 413. */
  discardLimit: number;
  /** The body of the server's own refusals (its status comes from the fault). */
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

const FAULT_STATUS: Record<ProtocolFault, number> = {
  "bad-request": 400,
  "headers-too-large": 431,
  timeout: 408,
  "expectation-failed": 417,
};

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Control characters other than HTAB may not appear in a header value; none, nor spaces, in a target.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const TARGET_BAD = /[\x00-\x20\x7f]/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})(?:[ \t]*;[^\r\n]*)?$/;
const LENGTH = /^[0-9]{1,15}$/;
const CRLF = 0x0a0d;
// Unread input kept while a request is being handled, before the socket is paused.
const MAX_PIPELINED_BYTES = 64 * 1024;
// How long a connection that is closing may take to read our last reply.
const CLOSING_GRACE_MS = 2000;

type Phase = "idle" | "head" | "body" | "chunk-size" | "chunk-data" | "chunk-crlf" | "trailers" | "handling";

let dateSecond = 0;
let dateText = "";
/** The Date header, formatted once a second. */
function httpDate(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** `text` without the spaces and tabs around it (RFC 9110 OWS), and nothing else. */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 0x20 || text.charCodeAt(end - 1) === 0x09)) end--;
  return text.slice(start, end);
}

/** The reply to one request. */
export class Http1Response {
  private extra = "";
  private sent = false;
  /** The status sent; 0 until `send`. */
  statusCode = 0;

  /** @internal */
  constructor(
    private readonly conn: Connection,
    private readonly head: boolean,
  ) {}

  /** Whether the reply has been sent (or the connection destroyed). */
  get headersSent(): boolean {
    return this.sent;
  }

  /**
   * Adds a header to the reply. `Connection: close` closes the connection after the reply. Throws on a
   * name or value that could split the reply; a second call with the same name adds a second line.
   */
  setHeader(name: string, value: string | number): void {
    const text = String(value);
    if (!TOKEN.test(name) || CONTROL.test(text)) throw new TypeError(`invalid header ${name}`);
    if (name.toLowerCase() === "connection") {
      if (/\bclose\b/i.test(text)) this.conn.closeAfterReply = true;
      return;
    }
    this.extra += `${name}: ${text}\r\n`;
  }

  /** Sends the reply: status, headers and body in one write. A second call does nothing. */
  send(status: number, contentType: string, body: string | Buffer): void {
    if (this.sent) return;
    this.sent = true;
    this.statusCode = status;
    const conn = this.conn;
    const close = conn.closeAfterReply || conn.server.draining;
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
    const head =
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n` +
      `Content-Type: ${contentType}\r\nContent-Length: ${length}\r\n${this.extra}` +
      `Date: ${httpDate(Date.now())}\r\n` +
      (close
        ? "Connection: close\r\n\r\n"
        : `Connection: keep-alive\r\nKeep-Alive: timeout=${conn.server.keepAliveSeconds}\r\n\r\n`);
    conn.reply(head, this.head ? "" : body, close);
  }

  /** Drops the connection without a reply (when a reply can no longer be trusted). */
  destroy(): void {
    this.sent = true;
    this.conn.socket.destroy();
  }
}

/** The shared state of a server's connections. */
interface ServerState {
  readonly options: Required<Omit<Http1Options, "handler" | "bodyLimit" | "refusal" | "discardLimit">> &
    Http1Options;
  readonly keepAliveSeconds: number;
  draining: boolean;
  readonly connections: Set<Connection>;
}

/** One client connection: a parser that feeds the handler one request at a time. */
class Connection {
  private buf: Buffer | null = null;
  private phase: Phase = "idle";
  /** When the current phase times out (ms since the epoch); 0 for never. */
  deadline: number;
  private requestStart = 0;
  private headScanned = 0;
  private method = "";
  private url = "";
  private version: "1.0" | "1.1" = "1.1";
  private headers: Record<string, string> = {};
  private remaining = 0;
  private limit = 0;
  private size = 0;
  private chunks: Buffer[] = [];
  private trailerBytes = 0;
  private paused = false;
  private ended = false;
  /** The client has half-closed: answer the complete requests it sent, then close. */
  private inputEnded = false;
  closeAfterReply = false;

  constructor(
    readonly socket: Socket,
    readonly server: ServerState,
  ) {
    // A connection that never sends a request is dropped like one that stalls in its headers.
    this.deadline = Date.now() + server.options.headersTimeoutMs;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("end", () => {
      this.inputEnded = true;
      // Complete requests still buffered are answered first; `next` closes after the last reply.
      if (this.phase !== "handling") this.next();
    });
    socket.on("close", () => server.connections.delete(this));
  }

  /** True when no request is under way, so closing loses nothing. */
  get idle(): boolean {
    return this.phase === "idle" && this.buf === null;
  }

  /** Called by the server's timer. */
  expire(now: number): void {
    if (this.deadline === 0 || now < this.deadline) return;
    if (this.ended || this.phase === "idle") {
      this.socket.destroy();
      return;
    }
    if (this.phase !== "handling") this.refuse("timeout", "the request was not received in time");
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.phase === "handling") {
      if (this.buf.length > MAX_PIPELINED_BYTES && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      return;
    }
    this.parse();
  }

  /** Consumes buffered input until it runs out or a request is handed to the handler. */
  private parse(): void {
    while (this.buf !== null && !this.ended && this.phase !== "handling") {
      const progressed = this.step(this.buf);
      if (!progressed) return;
    }
  }

  /** One step of the parser on `buf`; false when it needs more input. */
  private step(buf: Buffer): boolean {
    switch (this.phase) {
      case "idle":
        return this.startRequest(buf);
      case "head":
        return this.readHead(buf);
      case "body":
        return this.readBody(buf);
      case "chunk-size":
        return this.readChunkSize(buf);
      case "chunk-data":
        return this.readBody(buf);
      case "chunk-crlf":
        return this.readChunkEnd(buf);
      case "trailers":
        return this.readTrailer(buf);
      default:
        return false;
    }
  }

  private consume(n: number): void {
    const buf = this.buf as Buffer;
    this.buf = n >= buf.length ? null : buf.subarray(n);
  }

  private startRequest(buf: Buffer): boolean {
    // Empty lines before a request line are ignored (RFC 9112 §2.2), also when split across reads.
    let start = 0;
    while (start + 1 < buf.length && buf.readUInt16LE(start) === CRLF) start += 2;
    if (start === buf.length - 1 && buf[start] === 0x0d) {
      this.consume(start);
      return false;
    }
    if (start > 0) {
      this.consume(start);
      return this.buf !== null;
    }
    const now = Date.now();
    this.phase = "head";
    this.requestStart = now;
    this.deadline = now + this.server.options.headersTimeoutMs;
    this.headScanned = 0;
    return true;
  }

  private readHead(buf: Buffer): boolean {
    const max = this.server.options.maxHeaderBytes;
    const end = buf.indexOf("\r\n\r\n", Math.max(0, this.headScanned - 3), "latin1");
    if (end === -1) {
      this.headScanned = buf.length;
      if (buf.length > max) this.refuse("headers-too-large", `request headers over ${max} bytes`);
      return false;
    }
    if (end > max) {
      this.refuse("headers-too-large", `request headers over ${max} bytes`);
      return false;
    }
    const fault = this.parseHead(buf.toString("latin1", 0, end));
    this.consume(end + 4);
    if (fault !== undefined) {
      this.refuse(fault[0], fault[1]);
      return false;
    }
    return this.startBody();
  }

  /** Parses the request line and headers; a fault and its detail if they are not acceptable. */
  private parseHead(text: string): [ProtocolFault, string] | undefined {
    const lines = text.split("\r\n");
    const requestLine = lines[0] as string;
    const parts = requestLine.split(" ");
    if (parts.length !== 3) return ["bad-request", "the request line is not METHOD TARGET HTTP/1.x"];
    const [method, target, version] = parts as [string, string, string];
    if (!TOKEN.test(method)) return ["bad-request", "the method is not a token"];
    if (target.length === 0 || TARGET_BAD.test(target)) {
      return ["bad-request", "the request target is empty or has spaces or control characters"];
    }
    if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
      return ["bad-request", "this server speaks HTTP/1.1 and HTTP/1.0 only"];
    }
    const maxHeaders = this.server.options.maxHeaders;
    if (lines.length - 1 > maxHeaders) return ["headers-too-large", `more than ${maxHeaders} headers`];
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(":");
      if (colon <= 0) return ["bad-request", "a header line has no name"];
      const name = line.slice(0, colon).toLowerCase();
      if (!TOKEN.test(name)) return ["bad-request", "a header name is not a token (or a line is folded)"];
      const value = trimOws(line.slice(colon + 1));
      if (CONTROL.test(value)) return ["bad-request", `the ${name} header has control characters`];
      const previous = headers[name];
      if (previous === undefined) headers[name] = value;
      else if (name === "content-length") {
        if (previous !== value) return ["bad-request", "conflicting Content-Length headers"];
      } else if (name === "host") return ["bad-request", "more than one Host header"];
      else headers[name] = `${previous}, ${value}`;
    }
    this.method = method;
    this.url = target;
    this.version = version === "HTTP/1.1" ? "1.1" : "1.0";
    this.headers = headers;
    if (this.version === "1.1" && headers.host === undefined) {
      return ["bad-request", "an HTTP/1.1 request needs a Host header"];
    }
    const connection = headers.connection?.toLowerCase() ?? "";
    if (/(^|,)\s*close\s*(,|$)/.test(connection)) this.closeAfterReply = true;
    else if (this.version === "1.0" && !/(^|,)\s*keep-alive\s*(,|$)/.test(connection)) {
      this.closeAfterReply = true;
    }
    return undefined;
  }

  /** Decides how the body is framed, and answers `Expect`. */
  private startBody(): boolean {
    const h = this.headers;
    const te = h["transfer-encoding"];
    const cl = h["content-length"];
    this.limit = this.server.options.bodyLimit(this.method, this.url);
    this.size = 0;
    this.chunks = [];
    this.deadline = this.requestStart + this.server.options.requestTimeoutMs;
    let declared = 0;
    if (te !== undefined) {
      // Both framings at once is the classic smuggling vector (RFC 9112 §6.1): refuse it.
      if (cl !== undefined) return this.fault("bad-request", "Transfer-Encoding with Content-Length");
      if (this.version === "1.0") return this.fault("bad-request", "Transfer-Encoding in HTTP/1.0");
      if (te.toLowerCase() !== "chunked") {
        return this.fault("bad-request", "the only transfer coding accepted is chunked");
      }
    } else if (cl !== undefined) {
      if (!LENGTH.test(cl)) return this.fault("bad-request", "Content-Length is not a decimal number");
      declared = Number(cl);
    }
    const expect = h.expect;
    if (expect !== undefined) {
      if (expect.toLowerCase() !== "100-continue") {
        return this.fault("expectation-failed", "the only expectation understood is 100-continue");
      }
      if (declared > this.limit) {
        // The client waits before sending the body: refuse at once, and it need not send it at all.
        this.closeAfterReply = true;
        this.dispatch(true);
        return false;
      }
      if (this.buf === null && this.version === "1.1") this.socket.write("HTTP/1.1 100 Continue\r\n\r\n");
    }
    if (declared > this.server.options.discardLimit) {
      // Not worth reading: refuse now and close, as the rest of the body is still on its way.
      this.closeAfterReply = true;
      this.dispatch(true);
      return false;
    }
    if (te !== undefined) {
      this.phase = "chunk-size";
      return true;
    }
    this.remaining = declared;
    if (declared === 0) {
      this.dispatch(false);
      return false;
    }
    this.phase = "body";
    return true;
  }

  /** Reads body bytes of a Content-Length body or of one chunk. */
  private readBody(buf: Buffer): boolean {
    const n = Math.min(this.remaining, buf.length);
    const part = n === buf.length ? buf : buf.subarray(0, n);
    this.size += n;
    if (this.size <= this.limit) this.chunks.push(part);
    this.consume(n);
    this.remaining -= n;
    if (this.size > this.server.options.discardLimit) {
      this.closeAfterReply = true;
      this.dispatch(true);
      return false;
    }
    if (this.remaining > 0) return false;
    if (this.phase === "chunk-data") {
      this.phase = "chunk-crlf";
      return true;
    }
    this.dispatch(this.size > this.limit);
    return false;
  }

  private readChunkSize(buf: Buffer): boolean {
    const eol = buf.indexOf("\r\n", 0, "latin1");
    if (eol === -1) {
      if (buf.length > 1024) return this.fault("bad-request", "a chunk-size line is too long");
      return false;
    }
    const m = CHUNK_SIZE.exec(buf.toString("latin1", 0, eol));
    if (m === null) return this.fault("bad-request", "a chunk size is not hexadecimal");
    this.consume(eol + 2);
    this.remaining = Number.parseInt(m[1] as string, 16);
    if (this.remaining === 0) {
      this.phase = "trailers";
      this.trailerBytes = 0;
    } else {
      this.phase = "chunk-data";
    }
    return this.buf !== null;
  }

  private readChunkEnd(buf: Buffer): boolean {
    if (buf.length < 2) return false;
    if (buf.readUInt16LE(0) !== CRLF) return this.fault("bad-request", "a chunk is not followed by CRLF");
    this.consume(2);
    this.phase = "chunk-size";
    return this.buf !== null;
  }

  private readTrailer(buf: Buffer): boolean {
    const eol = buf.indexOf("\r\n", 0, "latin1");
    const max = this.server.options.maxHeaderBytes;
    if (eol === -1) {
      if (this.trailerBytes + buf.length > max) return this.fault("headers-too-large", "trailers too long");
      return false;
    }
    this.trailerBytes += eol + 2;
    if (this.trailerBytes > max) return this.fault("headers-too-large", "trailers too long");
    this.consume(eol + 2);
    if (eol === 0) {
      this.dispatch(this.size > this.limit);
      return false;
    }
    // Trailer fields are read and ignored: nothing in this API is sent in them.
    return this.buf !== null;
  }

  private fault(fault: ProtocolFault, detail: string): boolean {
    this.refuse(fault, detail);
    return false;
  }

  /** Hands the complete request to the handler. */
  private dispatch(tooLarge: boolean): void {
    this.phase = "handling";
    this.deadline = 0;
    const body =
      tooLarge || this.chunks.length === 0
        ? Buffer.alloc(0)
        : this.chunks.length === 1
          ? (this.chunks[0] as Buffer)
          : Buffer.concat(this.chunks);
    this.chunks = [];
    const req: Http1Request = {
      method: this.method,
      url: this.url,
      httpVersion: this.version,
      headers: this.headers,
      body,
      bodyTooLarge: tooLarge,
    };
    const res = new Http1Response(this, this.method === "HEAD");
    let result: void | Promise<void>;
    try {
      result = this.server.options.handler(req, res);
    } catch {
      if (!res.headersSent) res.destroy();
      return;
    }
    if (result instanceof Promise) {
      result.catch(() => {
        if (!res.headersSent) res.destroy();
      });
    }
  }

  /** Answers with the server's own refusal and closes the connection. */
  private refuse(fault: ProtocolFault, detail: string): void {
    this.closeAfterReply = true;
    const r = this.server.options.refusal(fault, detail);
    const res = new Http1Response(this, false);
    this.phase = "handling";
    res.send(FAULT_STATUS[fault], r.contentType, r.body);
  }

  /** Writes a reply and moves on to the next request, or closes. */
  reply(head: string, body: string | Buffer, close: boolean): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    let flushed: boolean;
    if (typeof body === "string") flushed = socket.write(head + body);
    else {
      socket.cork();
      socket.write(head, "latin1");
      flushed = socket.write(body);
      socket.uncork();
    }
    if (close) {
      this.finish();
      // Keep reading (and dropping) what the client still sends, so it sees our reply, not a reset.
      if (this.paused) socket.resume();
      return;
    }
    this.phase = "idle";
    this.deadline = Date.now() + this.server.options.keepAliveTimeoutMs;
    if (!flushed) {
      // A client that does not read its replies does not get more of them queued.
      socket.once("drain", () => this.next());
      return;
    }
    if (this.buf !== null) setImmediate(() => this.next());
    else if (this.paused || this.inputEnded) this.next();
  }

  private next(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    if (this.phase === "idle") this.parse();
    // A half-closed client sends nothing more: once no complete request is left, close.
    if (this.inputEnded && this.phase !== "handling") this.finish();
  }

  /** Closes our side after the last reply. */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.buf = null;
    this.deadline = Date.now() + CLOSING_GRACE_MS;
    this.socket.end();
  }

  /** Closes the connection if it is idle; else its reply will close it. */
  drain(): void {
    this.closeAfterReply = true;
    if (this.idle) this.finish();
  }
}

/** The HTTP/1.1 server: a `net.Server`, its connections and its timer. */
export class Http1Server {
  /** The listening socket. */
  readonly net: Server;
  private readonly state: ServerState;
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: Http1Options) {
    const full = {
      maxHeaderBytes: 16 * 1024,
      maxHeaders: 100,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5000,
      ...options,
    };
    this.state = {
      options: full,
      keepAliveSeconds: Math.max(1, Math.floor(full.keepAliveTimeoutMs / 1000)),
      draining: false,
      connections: new Set(),
    };
    // Half-open: a client may send its requests, then close its side and still read every reply.
    this.net = createServer({ allowHalfOpen: true }, (socket) => {
      if (this.state.draining) {
        socket.destroy();
        return;
      }
      this.state.connections.add(new Connection(socket, this.state));
    });
    const shortest = Math.min(full.headersTimeoutMs, full.requestTimeoutMs, full.keepAliveTimeoutMs);
    const every = Math.min(1000, Math.max(50, Math.floor(shortest / 4)));
    this.net.on("listening", () => {
      this.timer ??= setInterval(() => {
        const now = Date.now();
        for (const c of this.state.connections) c.expire(now);
      }, every).unref();
    });
  }

  /** Whether `close` has begun. */
  get draining(): boolean {
    return this.state.draining;
  }

  /**
   * Stops accepting connections, closes idle ones, lets each request under way get its reply (with
   * `Connection: close`), and resolves once every connection is closed, destroying what is left after
   * `graceMs`. A second call returns the same promise.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.state.draining = true;
      const done = () => {
        if (this.state.connections.size > 0 || this.net.listening) return;
        clearInterval(this.timer);
        clearTimeout(force);
        resolve();
      };
      const force = setTimeout(() => {
        for (const c of this.state.connections) c.socket.destroy();
      }, graceMs);
      for (const c of this.state.connections) {
        c.socket.once("close", done);
        c.drain();
      }
      if (this.net.listening) this.net.close(done);
      else done();
    });
    return this.closing;
  }
}
