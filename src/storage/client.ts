/**
 * The typed client of the storage server's current API (`/v1/...`). Tokens are `bigint`; every call
 * takes an `AbortSignal` and a timeout; a stale token is a `StaleTokenError` carrying the current max.
 */
import { Agent, type IncomingHttpHeaders, request } from "node:http";
import {
  StaleTokenError,
  StorageAbortedError,
  StorageArgumentError,
  StorageRequestError,
  StorageTimeoutError,
  StorageUnavailableError,
} from "./errors.js";
import { PROBLEMS, type ProblemCode } from "./registry.js";

/** Options of `new StorageClient`. */
export interface StorageClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The server's `--auth-token`, sent as `Authorization: Bearer <authToken>`. */
  authToken?: string;
  /** Default timeout of every call, in ms; default 5000. */
  timeoutMs?: number;
}

/** Options every call takes. */
export interface CallOptions {
  /** Aborting it rejects the call with `StorageAbortedError` (its `cause` is the signal's reason). */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call; past it the call rejects with `StorageTimeoutError`. */
  timeoutMs?: number;
}

/** Options of a fenced call. */
export interface FencedCallOptions extends CallOptions {
  /** The fencing token (a lock's `token`); without it a write is refused unless the server allows unfenced writes. */
  token?: bigint;
  /** The fence (scope) the token is checked against; default the key. */
  fence?: string;
}

/** One decision of the server's audit log. */
export interface AuditEntry {
  seq: number;
  /** Epoch milliseconds of the decision. */
  timeMs: number;
  op: "read" | "write";
  key: string;
  fence: string;
  token: bigint | null;
  /** The fence's max before this decision; `null` if it had none. */
  previousMax: bigint | null;
  accepted: boolean;
  reason: string;
  /** UTF-8 text of the first 256 bytes of a written value; `null` for reads. */
  value: string | null;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface WireAudit extends Omit<AuditEntry, "token" | "previousMax"> {
  token: string | null;
  previousMax: string | null;
}

/** The largest reply the client reads: a 1 MiB value with room to spare. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

/**
 * A client of one storage server. Keeps up to 16 keep-alive connections (idle ones do not keep the
 * process alive); `close()` drops them.
 */
export class StorageClient {
  private readonly host: string;
  private readonly port: number;
  private readonly authToken: string | undefined;
  private readonly timeoutMs: number;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(options: StorageClientOptions) {
    let url: URL | undefined;
    try {
      url = new URL(String(options?.url));
    } catch {
      // Reported below with the expected form.
    }
    if (url?.protocol !== "http:" || url.hostname === "") {
      throw new StorageArgumentError(
        `storage url must be http://host:port (e.g. http://127.0.0.1:8080), got ${JSON.stringify(options?.url)}`,
      );
    }
    this.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = Number(url.port || 80);
    this.authToken = options.authToken;
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  /**
   * Writes `value` under `key`, fenced by `token` on `fence` (default the key). Resolves once the write
   * is committed, with the fence's max token (`null` after an unfenced write to a never-fenced key).
   * Rejects with `StaleTokenError` if a higher token was seen (nothing written); with
   * `StorageRequestError` (e.g. `TOKEN_REQUIRED`, `PAYLOAD_TOO_LARGE`) on other refusals; on abort or
   * timeout the write may still have been applied. Each call is one request.
   */
  async write(
    key: string,
    value: string | Uint8Array,
    opts: FencedCallOptions = {},
  ): Promise<{ maxToken: bigint | null }> {
    const body = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
    const headers = this.fenceHeaders(opts);
    headers["Content-Type"] = "application/octet-stream";
    const reply = await this.call("PUT", `/v1/kv/${encodeURIComponent(key)}`, headers, body, opts, "write");
    if (reply.status !== 200) throw this.refusal(reply);
    const json = parseJson(reply) as { maxToken?: string | null };
    return { maxToken: json.maxToken == null ? null : BigInt(json.maxToken) };
  }

  /**
   * Reads `key`; resolves with its value, or `null` if there is no such key. With a `token` it is a
   * fenced read: it advances the fence like a write and rejects with `StaleTokenError` if a higher token
   * was seen. Abort and timeout reject as for `write`.
   */
  async read(key: string, opts: FencedCallOptions = {}): Promise<Buffer | null> {
    const reply = await this.call(
      "GET",
      `/v1/kv/${encodeURIComponent(key)}`,
      this.fenceHeaders(opts),
      null,
      opts,
      "read",
    );
    if (reply.status === 200) return reply.body;
    const err = this.refusal(reply);
    if (err instanceof StorageRequestError && err.code === "KEY_NOT_FOUND") return null;
    throw err;
  }

  /** The highest token `name` has seen; `null` if it never saw one. Abort and timeout reject as for `write`. */
  async fence(name: string, opts: CallOptions = {}): Promise<bigint | null> {
    const reply = await this.call(
      "GET",
      `/v1/fences/${encodeURIComponent(name)}`,
      this.baseHeaders(),
      null,
      opts,
      "fence",
    );
    if (reply.status !== 200) throw this.refusal(reply);
    const json = parseJson(reply) as { maxToken?: string | null };
    return json.maxToken == null ? null : BigInt(json.maxToken);
  }

  /**
   * Audit entries with `seq > after` (default 0), oldest first, at most `limit` (default 100, the server
   * allows up to 1000). Page by passing the last `seq` as the next `after`. Abort and timeout reject as
   * for `write`.
   */
  async audit(opts: CallOptions & { after?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const query = new URLSearchParams();
    if (opts.after !== undefined) query.set("after", String(opts.after));
    if (opts.limit !== undefined) query.set("limit", String(opts.limit));
    const reply = await this.call("GET", `/v1/audit?${query}`, this.baseHeaders(), null, opts, "audit");
    if (reply.status !== 200) throw this.refusal(reply);
    const json = parseJson(reply) as { entries?: WireAudit[] };
    if (!Array.isArray(json.entries)) throw new StorageUnavailableError("audit: the reply has no entries");
    return json.entries.map((e) => ({
      ...e,
      token: e.token === null ? null : BigInt(e.token),
      previousMax: e.previousMax === null ? null : BigInt(e.previousMax),
    }));
  }

  /** Closes the idle connections. Calls made afterwards open new ones. Safe to call twice. */
  close(): void {
    this.agent.destroy();
  }

  private baseHeaders(): Record<string, string> {
    return this.authToken === undefined ? {} : { Authorization: `Bearer ${this.authToken}` };
  }

  private fenceHeaders(opts: FencedCallOptions): Record<string, string> {
    const headers = this.baseHeaders();
    if (opts.token !== undefined) headers["Fencing-Token"] = tokenText(opts.token);
    if (opts.fence !== undefined) headers.Fence = encodeURIComponent(opts.fence);
    return headers;
  }

  /** Turns a refusal into the matching error. */
  private refusal(reply: Reply): Error {
    let problem: { code?: unknown; detail?: unknown; token?: unknown; maxToken?: unknown; fence?: unknown };
    try {
      problem = JSON.parse(reply.body.toString("utf8"));
    } catch (err) {
      return new StorageUnavailableError(
        `unexpected reply (${reply.status}) that is not a problem document`,
        err,
      );
    }
    if (
      problem.code === "STALE_FENCING_TOKEN" &&
      typeof problem.token === "string" &&
      typeof problem.maxToken === "string" &&
      typeof problem.fence === "string"
    ) {
      return new StaleTokenError(BigInt(problem.token), BigInt(problem.maxToken), problem.fence);
    }
    const known = typeof problem.code === "string" && PROBLEMS.some((p) => p.code === problem.code);
    const detail = typeof problem.detail === "string" ? problem.detail : "";
    return new StorageRequestError(
      known ? (problem.code as ProblemCode) : `HTTP_${reply.status}`,
      reply.status,
      known || typeof problem.code !== "string" ? detail : `${problem.code}: ${detail}`,
    );
  }

  /** One HTTP exchange, bounded by the timeout and the caller's signal; listeners always removed. */
  private call(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | null,
    opts: CallOptions,
    what: string,
  ): Promise<Reply> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    // Created here, while the caller is on the stack, so the stack trace points at the caller.
    const timeout = new StorageTimeoutError(`storage ${what} got no answer within ${timeoutMs} ms`);
    const signal = opts.signal;
    if (signal?.aborted) {
      return Promise.reject(new StorageAbortedError(`storage ${what} aborted`, signal.reason));
    }
    return new Promise<Reply>((resolve, reject) => {
      const req = request({ host: this.host, port: this.port, method, path, headers, agent: this.agent });
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const fail = (err: Error) => {
        settle(() => reject(err));
        req.destroy();
      };
      const timer = setTimeout(() => fail(timeout), timeoutMs);
      const onAbort = () => fail(new StorageAbortedError(`storage ${what} aborted`, signal?.reason));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (err) =>
        fail(new StorageUnavailableError(`storage ${what} failed: ${err.message}`, err)),
      );
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_REPLY_BYTES) fail(new StorageUnavailableError(`storage ${what}: reply too large`));
          else chunks.push(chunk);
        });
        res.on("end", () =>
          settle(() =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          ),
        );
        res.on("error", (err) =>
          fail(new StorageUnavailableError(`storage ${what} failed: ${err.message}`, err)),
        );
      });
      req.end(body ?? undefined);
    });
  }
}

function parseJson(reply: Reply): unknown {
  try {
    return JSON.parse(reply.body.toString("utf8"));
  } catch (err) {
    throw new StorageUnavailableError("the server's reply is not JSON", err);
  }
}

/**
 * A token as the header carries it. A `number` from plain JavaScript is taken only while it is exact (up to
 * 2^53-1): above that it has already been rounded, and sending it would fence with the wrong token.
 */
function tokenText(token: unknown): string {
  if (typeof token === "bigint") return token.toString();
  if (typeof token === "number" && Number.isSafeInteger(token)) return String(token);
  throw new StorageArgumentError(
    `token must be a bigint${typeof token === "number" ? ` (the number ${token} is not exact: pass BigInt or the lock's token as is)` : `, got ${typeof token}`}`,
  );
}
