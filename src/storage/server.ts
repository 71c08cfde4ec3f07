/**
 * The fenced storage server: an app factory (`createStorageServer`) separate from `listen`, so tests
 * can run it in-process on port 0 and the CLI can run it as a process. HTTP from `transport.ts` (`node:http`).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { Batcher } from "./batch.js";
import { problemBody, sendJson, sendProblem } from "./http.js";
import { checkTokenHeader, DEFAULT_LIMITS, decodeName, decodeUtf8, type Limits } from "./input.js";
import { MemoryStore } from "./memory-store.js";
import { Metrics } from "./metrics.js";
import { type ProblemCode, problemSpec } from "./registry.js";
import { parseSeedRequest, seedReply } from "./seed.js";
import { SqliteStore } from "./sqlite-store.js";
import {
  AUDIT_VALUE_BYTES,
  type AuditRow,
  type Decision,
  type Outcome,
  type Store,
  type StoreOptions,
} from "./store.js";
import { type Http1Request, type Http1Response, HttpTransport, type ProtocolFault } from "./transport.js";

/** Options of `createStorageServer`. */
export interface StorageServerOptions extends StoreOptions {
  /** When set, every request but `/healthz` needs `Authorization: Bearer <authToken>`. */
  authToken?: string;
  /** Size limits; see `DEFAULT_LIMITS`. */
  limits?: Partial<Limits>;
  /** Time allowed to receive a request's headers; default 10 s. */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request; default 30 s. */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open; default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Where structured log lines go (one per rejected decision); default one JSON line on stderr. */
  log?: (entry: Record<string, unknown>) => void;
}

/** Where the server listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

type Route = "seed" | "kv" | "fences" | "audit" | "healthz" | "metrics" | "unknown";

/** The most audit entries one `GET /v1/audit` returns. */
export const MAX_AUDIT_LIMIT = 1000;

const BEARER = /^Bearer[ \t]+/i;

/** What the HTTP layer's own refusals are called in the registry. */
const FAULT_CODES: Record<ProtocolFault, ProblemCode> = {
  "bad-request": "BAD_REQUEST",
  "headers-too-large": "HEADERS_TOO_LARGE",
  "payload-too-large": "PAYLOAD_TOO_LARGE",
  timeout: "REQUEST_TIMEOUT",
  "expectation-failed": "EXPECTATION_FAILED",
};

/** A storage server: the HTTP server, its store and its metrics. */
export class StorageServer {
  /** The HTTP server. */
  private readonly http: HttpTransport;
  /** The database. */
  readonly store: Store;
  private readonly batcher: Batcher;
  private readonly metrics = new Metrics();
  private readonly limits: Limits;
  private readonly discardCap: number;
  private readonly authDigest: Buffer | undefined;
  private readonly log: (entry: Record<string, unknown>) => void;
  private closing: Promise<void> | undefined;

  constructor(options: StorageServerOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    if (options.limits?.maxValueBytes !== undefined && options.limits.maxBodyBytes === undefined) {
      this.limits.maxBodyBytes = options.limits.maxValueBytes + 64 * 1024;
    }
    this.discardCap = this.limits.maxBodyBytes * 4;
    this.authDigest = options.authToken === undefined ? undefined : digest(options.authToken);
    this.log = options.log ?? ((entry) => process.stderr.write(`${JSON.stringify(entry)}\n`));
    this.store = options.memory ? new MemoryStore(options) : new SqliteStore(options);
    this.batcher = new Batcher(this.store);
    this.http = new HttpTransport({
      handler: (req, res) => this.handle(req, res),
      bodyLimit: (method, url) =>
        method === "PUT" && url.startsWith("/v1/kv/") ? this.limits.maxValueBytes : this.limits.maxBodyBytes,
      discardLimit: this.discardCap,
      refusal: (fault, detail) => {
        const code = FAULT_CODES[fault];
        this.metrics.request("unknown", problemSpec(code).status, 0);
        return { contentType: "application/problem+json", body: problemBody(code, detail) };
      },
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5000,
    });
  }

  /**
   * Starts listening (default 127.0.0.1:8080; port 0 picks a free port) and resolves with the real
   * address. Rejects if the port cannot be bound, or on a second call while listening.
   */
  listen(port = 8080, host = "127.0.0.1"): Promise<ListenAddress> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      const net = this.http.server;
      net.once("error", onError);
      net.listen(port, host, () => {
        net.off("error", onError);
        const address = net.address() as AddressInfo;
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /**
   * Drains and closes: stops accepting connections, lets in-flight requests finish (their replies say
   * `Connection: close`), forcibly closes what is still open after `graceMs` (default 10 s), commits
   * what is queued and closes the database. A second call returns the same promise.
   */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      await this.http.close(graceMs);
      this.batcher.close();
      this.store.close();
    })();
    return this.closing;
  }

  private async handle(req: Http1Request, res: Http1Response): Promise<void> {
    const started = performance.now();
    const url = req.url;
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const route = routeOf(path);
    try {
      if (route !== "healthz" && !this.authorized(req)) {
        res.setHeader("WWW-Authenticate", 'Bearer realm="fencelock"');
        this.fail(
          res,
          route,
          "UNAUTHORIZED",
          "send Authorization: Bearer <token>, the server's --auth-token",
        );
        return;
      }
      switch (route) {
        case "seed":
          return await this.seed(req, res);
        case "kv":
          return await this.kv(req, res, path.slice("/v1/kv/".length));
        case "fences":
          return this.fence(req, res, path.slice("/v1/fences/".length));
        case "audit":
          return this.audit(req, res, q === -1 ? "" : url.slice(q + 1));
        case "healthz":
          if (!this.allow(req, res, route, "GET")) return;
          return sendJson(
            res,
            this.http.draining ? 503 : 200,
            `{"status":"${this.http.draining ? "draining" : "ok"}"}`,
          );
        case "metrics":
          if (!this.allow(req, res, route, "GET")) return;
          return res.send(200, "text/plain; version=0.0.4; charset=utf-8", this.metrics.render());
        default:
          return this.fail(res, route, "NOT_FOUND", `no route ${req.method} ${path.slice(0, 200)}`);
      }
    } catch (err) {
      this.log({ event: "error", time: new Date().toISOString(), route, error: String(err) });
      if (!res.headersSent) this.fail(res, route, "INTERNAL", "the request failed; nothing was acknowledged");
    } finally {
      if (res.statusCode !== 0) {
        this.metrics.request(route, res.statusCode, (performance.now() - started) / 1000);
      }
    }
  }

  private async seed(req: Http1Request, res: Http1Response): Promise<void> {
    if (!this.allow(req, res, "seed", "POST")) return;
    const contentType = req.headers["content-type"] ?? "";
    if (contentType !== "application/json" && !isJsonUtf8(contentType)) {
      return this.fail(
        res,
        "seed",
        "UNSUPPORTED_MEDIA_TYPE",
        "POST / takes Content-Type: application/json (UTF-8)",
      );
    }
    if (req.bodyTooLarge) {
      return this.fail(
        res,
        "seed",
        "PAYLOAD_TOO_LARGE",
        `body over the limit of ${this.limits.maxBodyBytes} bytes`,
      );
    }
    const text = decodeUtf8(req.body);
    if (text === undefined) return this.fail(res, "seed", "BAD_REQUEST", "the body is not valid UTF-8");
    const parsed = parseSeedRequest(text, this.limits);
    if (!parsed.ok) return this.fail(res, "seed", parsed.problem.code, parsed.problem.detail);
    const r = parsed.value;
    if (r.op === "read" && r.token === null) {
      const { value, maxToken } = this.store.read(r.key, r.fence);
      if (value === null) return this.seedFail(res, "KEY_NOT_FOUND", "key not found", maxToken);
      return sendJson(res, 200, seedReply(value.toString("utf8"), maxToken, ""));
    }
    const decision: Decision =
      r.op === "write"
        ? { op: "write", key: r.key, fence: r.fence, token: r.token, value: r.value ?? Buffer.alloc(0) }
        : { op: "read", key: r.key, fence: r.fence, token: r.token as bigint };
    const outcome = await this.decide(decision);
    switch (outcome.kind) {
      case "written":
        return sendJson(res, 200, seedReply(r.value?.toString("utf8") ?? "", outcome.maxToken, ""));
      case "read":
        if (outcome.value === null)
          return this.seedFail(res, "KEY_NOT_FOUND", "key not found", outcome.maxToken);
        return sendJson(res, 200, seedReply(outcome.value.toString("utf8"), outcome.maxToken, ""));
      case "stale":
        return this.seedFail(res, "STALE_FENCING_TOKEN", staleText(outcome, r.fence), outcome.maxToken);
      case "token-required":
        return this.seedFail(res, "TOKEN_REQUIRED", tokenRequiredText, null);
    }
  }

  private async kv(req: Http1Request, res: Http1Response, rawKey: string): Promise<void> {
    if (req.method !== "GET" && req.method !== "PUT") {
      res.setHeader("Allow", "GET, PUT");
      return this.fail(res, "kv", "METHOD_NOT_ALLOWED", `${req.method} is not allowed on /v1/kv/{key}`);
    }
    const key = decodeName(rawKey, "key", this.limits.maxKeyBytes);
    if (!key.ok) return this.fail(res, "kv", key.problem.code, key.problem.detail);
    const token = checkTokenHeader(header(req, "fencing-token"));
    if (!token.ok) return this.fail(res, "kv", token.problem.code, token.problem.detail);
    const fenceHeader = header(req, "fence");
    const fence =
      fenceHeader === undefined ? key : decodeName(fenceHeader, "Fence header", this.limits.maxKeyBytes);
    if (!fence.ok) return this.fail(res, "kv", fence.problem.code, fence.problem.detail);

    if (req.method === "GET") {
      let value: Buffer | null;
      let maxToken: bigint | null;
      if (token.value === null) {
        ({ value, maxToken } = this.store.read(key.value, fence.value));
      } else {
        const outcome = await this.decide({
          op: "read",
          key: key.value,
          fence: fence.value,
          token: token.value,
        });
        if (outcome.kind === "stale") return this.staleProblem(res, outcome, fence.value);
        if (outcome.kind !== "read") throw new Error(`unexpected outcome ${outcome.kind} of a read`);
        ({ value, maxToken } = outcome);
      }
      if (maxToken !== null) res.setHeader("Fencing-Max-Token", maxToken.toString());
      if (value === null) {
        return this.fail(res, "kv", "KEY_NOT_FOUND", `no key ${JSON.stringify(key.value.slice(0, 200))}`, {
          maxToken: maxToken?.toString() ?? null,
        });
      }
      return res.send(200, "application/octet-stream", value);
    }

    if (req.bodyTooLarge) {
      return this.fail(
        res,
        "kv",
        "PAYLOAD_TOO_LARGE",
        `value over the limit of ${this.limits.maxValueBytes} bytes`,
      );
    }
    const outcome = await this.decide({
      op: "write",
      key: key.value,
      fence: fence.value,
      token: token.value,
      value: req.body,
    });
    switch (outcome.kind) {
      case "written":
        return sendJson(
          res,
          200,
          JSON.stringify({
            key: key.value,
            fence: fence.value,
            maxToken: outcome.maxToken?.toString() ?? null,
            seq: outcome.seq,
          }),
        );
      case "stale":
        return this.staleProblem(res, outcome, fence.value);
      case "token-required":
        return this.fail(res, "kv", "TOKEN_REQUIRED", tokenRequiredText);
      default:
        throw new Error(`unexpected outcome ${outcome.kind} of a write`);
    }
  }

  private fence(req: Http1Request, res: Http1Response, rawName: string): void {
    if (req.method !== "GET" && req.method !== "DELETE") {
      res.setHeader("Allow", "GET, DELETE");
      this.fail(res, "fences", "METHOD_NOT_ALLOWED", `${req.method} is not allowed on /v1/fences/{name}`);
      return;
    }
    const name = decodeName(rawName, "fence", this.limits.maxKeyBytes);
    if (!name.ok) {
      this.fail(res, "fences", name.problem.code, name.problem.detail);
      return;
    }
    if (req.method === "DELETE") {
      this.resetFence(res, name.value);
      return;
    }
    const max = this.store.maxToken(name.value);
    sendJson(res, 200, JSON.stringify({ fence: name.value, maxToken: max?.toString() ?? null }));
  }

  /**
   * `DELETE /v1/fences/{name}`: an operator's fence reset. Only on a server with `--auth-token` (the
   * request got here, so it carried the token): a reset lets a stale holder's write through until a newer
   * token arrives, so it must never be open to whoever reaches the port.
   */
  private resetFence(res: Http1Response, fence: string): void {
    if (this.authDigest === undefined) {
      this.fail(
        res,
        "fences",
        "ADMIN_DISABLED",
        "a fence reset needs the server to run with --auth-token; or stop the server and run " +
          "'fencelock storage fence reset NAME --data DIR' on its data directory",
      );
      return;
    }
    // Decisions queued before the reset commit before it, so the audit log keeps arrival order.
    this.batcher.flush();
    const by = "an operator over HTTP (DELETE /v1/fences with the server's bearer token)";
    const { seq, previousMax } = this.store.transaction(() => this.store.resetFence(fence, by));
    this.log({
      event: "fence-reset",
      time: new Date().toISOString(),
      seq,
      fence,
      previousMax: previousMax?.toString() ?? null,
      by,
    });
    sendJson(res, 200, JSON.stringify({ fence, previousMax: previousMax?.toString() ?? null, seq }));
  }

  private audit(req: Http1Request, res: Http1Response, query: string): void {
    if (!this.allow(req, res, "audit", "GET")) return;
    const params = new URLSearchParams(query);
    const after = integerParam(params.get("after"), 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = integerParam(params.get("limit"), 1, MAX_AUDIT_LIMIT, 100);
    if (after === undefined || limit === undefined) {
      const detail = `after must be an integer >= 0, limit an integer from 1 to ${MAX_AUDIT_LIMIT}`;
      this.fail(res, "audit", "BAD_REQUEST", detail);
      return;
    }
    const entries = this.store.auditAfter(after, limit).map(auditWire);
    sendJson(res, 200, JSON.stringify({ entries }));
  }

  /** Runs one decision through the group commit, counts it, and logs it if it is a rejection. */
  private async decide(d: Decision): Promise<Outcome> {
    const outcome = await this.batcher.submit(d);
    const accepted = outcome.kind === "written" || outcome.kind === "read";
    this.metrics.decision(d.op, accepted);
    if (!accepted) {
      this.log({
        event: "rejected",
        time: new Date().toISOString(),
        seq: outcome.seq,
        op: d.op,
        key: d.key,
        fence: d.fence,
        token: d.token?.toString() ?? null,
        maxToken: outcome.kind === "stale" ? outcome.maxToken.toString() : null,
        reason: outcome.reason,
      });
    }
    return outcome;
  }

  private authorized(req: Http1Request): boolean {
    if (this.authDigest === undefined) return true;
    const value = req.headers.authorization ?? "";
    const m = BEARER.exec(value);
    if (m === null) return false;
    // Exactly the bytes after the scheme (node:http has only stripped spaces and tabs around the
    // value): no Unicode trimming, so a trailing no-break space is a different token. Hashing first
    // makes the comparison constant-time whatever the lengths.
    const sent = Buffer.from(value.slice(m[0].length), "latin1");
    return timingSafeEqual(digest(sent), this.authDigest);
  }

  private allow(req: Http1Request, res: Http1Response, route: Route, method: string): boolean {
    if (req.method === method) return true;
    res.setHeader("Allow", method);
    this.fail(res, route, "METHOD_NOT_ALLOWED", `${req.method} is not allowed here; use ${method}`);
    return false;
  }

  private staleProblem(
    res: Http1Response,
    outcome: Extract<Outcome, { kind: "stale" }>,
    fence: string,
  ): void {
    this.fail(res, "kv", "STALE_FENCING_TOKEN", staleText(outcome, fence), {
      token: outcome.token.toString(),
      maxToken: outcome.maxToken.toString(),
      fence,
    });
  }

  private seedFail(res: Http1Response, code: ProblemCode, err: string, maxToken: bigint | null): void {
    sendJson(res, problemSpec(code).status, seedReply("", maxToken, err, code));
  }

  /** A refusal in the shape of the route: the seed's `{val,version,err}` on `/`, problem+json elsewhere. */
  private fail(
    res: Http1Response,
    route: Route,
    code: ProblemCode,
    detail: string,
    extra?: Record<string, string | number | null>,
  ): void {
    if (route === "seed") this.seedFail(res, code, detail, null);
    else sendProblem(res, code, detail, extra);
  }
}

/** Creates a storage server (not yet listening). Opens or creates its database now; throws if it cannot. */
export function createStorageServer(options: StorageServerOptions = {}): StorageServer {
  return new StorageServer(options);
}

const tokenRequiredText =
  "a write needs a fencing token (start the server with --allow-unfenced to permit it)";

function staleText(outcome: Extract<Outcome, { kind: "stale" }>, fence: string): string {
  return (
    `stale fencing token ${outcome.token} < max ${outcome.maxToken} of fence ${JSON.stringify(fence.slice(0, 200))}` +
    ` (a max no holder can reach, e.g. a lease ID sent as a token, is cleared by an operator: ${RESET_HINT})`
  );
}

/** Where a refusal points an operator whose fence holds a max that no holder can reach. */
const RESET_HINT = "fencelock storage fence reset --help";

/** Whether a `Content-Type` is JSON in UTF-8 (a charset parameter other than UTF-8 is refused). */
function isJsonUtf8(contentType: string): boolean {
  const type = contentType.split(";");
  const media = (type[0] ?? "").trim().toLowerCase();
  const charset = type.slice(1).find((p) => /^\s*charset=/i.test(p));
  return media === "application/json" && !(charset && !/=\s*"?utf-8"?\s*$/i.test(charset));
}

function routeOf(path: string): Route {
  if (path === "/") return "seed";
  if (path.startsWith("/v1/kv/")) return "kv";
  if (path.startsWith("/v1/fences/")) return "fences";
  if (path === "/v1/audit") return "audit";
  if (path === "/healthz") return "healthz";
  if (path === "/metrics") return "metrics";
  return "unknown";
}

function header(req: Http1Request, name: string): string | undefined {
  return req.headers[name];
}

function digest(bytes: string | Buffer): Buffer {
  return createHash("sha256").update(bytes).digest();
}

function integerParam(text: string | null, min: number, max: number, dflt: number): number | undefined {
  if (text === null) return dflt;
  if (!/^[0-9]{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** An audit row as JSON: int64 values as decimal strings, the value preview as UTF-8 text. */
function auditWire(row: AuditRow): Record<string, unknown> {
  return {
    seq: row.seq,
    timeMs: row.timeMs,
    op: row.op,
    key: row.key,
    fence: row.fence,
    token: row.token?.toString() ?? null,
    previousMax: row.previousMax?.toString() ?? null,
    accepted: row.accepted,
    reason: row.reason,
    value: row.value === null ? null : previewText(row.value),
  };
}

/** The UTF-8 text of a value's first bytes, cut back to a whole character if the cut split one. */
function previewText(bytes: Buffer): string {
  let end = Math.min(bytes.length, AUDIT_VALUE_BYTES);
  if (end === AUDIT_VALUE_BYTES) {
    // Step back over continuation bytes (10xxxxxx) to the start of the last character, and drop it
    // if its sequence is incomplete.
    let start = end - 1;
    while (start > 0 && ((bytes[start] as number) & 0xc0) === 0x80) start--;
    const lead = bytes[start] as number;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (start + need > end) end = start;
  }
  return bytes.subarray(0, end).toString("utf8");
}
