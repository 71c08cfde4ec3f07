/**
 * The typed client of the storage server's current API (`/v1/...`). Tokens are `bigint`; every call
 * takes an `AbortSignal` and a timeout; a stale token is a `StaleTokenError` carrying the current max.
 */
import { Agent } from "node:http";
import {
  StaleTokenError,
  StorageArgumentError,
  StorageRequestError,
  StorageUnavailableError,
} from "./errors.js";
import { exchange, type Reply } from "./exchange.js";

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
  /** `reset`: an operator cleared the fence's max (`previousMax`); `value` says who and how. */
  op: "read" | "write" | "reset";
  key: string;
  fence: string;
  token: bigint | null;
  /** The fence's max before this decision; `null` if it had none. */
  previousMax: bigint | null;
  accepted: boolean;
  reason: string;
  /** UTF-8 text of the first 256 bytes of a written value (of a reset: who made it); `null` for reads. */
  value: string | null;
}

interface WireAudit extends Omit<AuditEntry, "token" | "previousMax"> {
  token: string | null;
  previousMax: string | null;
}

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
   * An operator's recovery (`DELETE /v1/fences/{name}`): forgets the fence's max, so the next token of
   * any size is accepted, and resolves with the max it had and the reset's audit sequence number. The
   * server must run with `--auth-token` (else `StorageRequestError` `ADMIN_DISABLED`). Dangerous: until a
   * holder writes with a newer token, a stale holder's write goes through. Abort and timeout reject as
   * for `write` (the reset may still have happened).
   */
  async resetFence(
    name: string,
    opts: CallOptions = {},
  ): Promise<{ previousMax: bigint | null; seq: number }> {
    const path = `/v1/fences/${encodeURIComponent(name)}`;
    const reply = await this.call("DELETE", path, this.baseHeaders(), null, opts, "fence reset");
    if (reply.status !== 200) throw this.refusal(reply);
    const json = parseJson(reply) as { previousMax?: string | null; seq?: number };
    return { previousMax: json.previousMax == null ? null : BigInt(json.previousMax), seq: Number(json.seq) };
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
        reply.status,
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
    return StorageRequestError.fromReply(
      problem.code,
      reply.status,
      typeof problem.detail === "string" ? problem.detail : "",
    );
  }

  /** One HTTP exchange, bounded by the timeout and the caller's signal. */
  private call(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | null,
    opts: CallOptions,
    what: string,
  ): Promise<Reply> {
    const target = { host: this.host, port: this.port, agent: this.agent };
    return exchange(
      target,
      { method, path, headers, body, what },
      opts.signal,
      opts.timeoutMs ?? this.timeoutMs,
    );
  }
}

function parseJson(reply: Reply): unknown {
  try {
    return JSON.parse(reply.body.toString("utf8"));
  } catch (err) {
    throw new StorageUnavailableError("the server's reply is not JSON", err, reply.status);
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
