/**
 * A client of the seed's storage protocol (etcd's contrib/lock storage): `POST /` with
 * `{"op":"write","key","val","version"}`. It talks to that storage and to fencelock's own `POST /`
 * alike, so a fencelock client can replay the seed against either. The reply's `version` is read from
 * its digits, never through a double.
 */
import { Agent } from "node:http";
import type { CallOptions, StorageClientOptions } from "./client.js";
import { SeedRefusedError, StaleTokenError, StorageRequestError, StorageUnavailableError } from "./errors.js";
import { exchange, type Reply } from "./exchange.js";
import { type JsonValue, parseJson, RawNumber } from "./json.js";

/**
 * A client of one seed-protocol storage. Keeps up to 4 keep-alive connections (idle ones do not keep the
 * process alive); `close()` drops them.
 */
export class SeedStorageClient {
  private readonly host: string;
  private readonly port: number;
  private readonly authToken: string | undefined;
  private readonly timeoutMs: number;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });

  /** Throws `TypeError` unless `url` is an `http://host:port` URL. */
  constructor(options: StorageClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:")
      throw new TypeError(`storage url must be http://host:port, got ${options.url}`);
    this.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = Number(url.port || 80);
    this.authToken = options.authToken;
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  /**
   * Writes `value` under `key` with `version` (the seed sends its lease ID; 0 means none). Resolves with
   * the version the storage answered. Rejects with `StaleTokenError` when fencelock's storage refuses a
   * stale version; `SeedRefusedError` when the seed's storage refuses (it takes only the version it
   * holds); `StorageRequestError` for fencelock's other refusals; `StorageUnavailableError` when the
   * answer is not this protocol or the connection fails (the seed's storage exits on a body it cannot
   * parse). Abort and timeout reject as `StorageClient.write` does; the write may still have happened.
   */
  async write(
    key: string,
    value: string,
    opts: CallOptions & { version: bigint },
  ): Promise<{ version: bigint }> {
    const body = Buffer.from(
      `{"op":"write","key":${JSON.stringify(key)},"val":${JSON.stringify(value)},"version":${opts.version}}`,
    );
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (this.authToken !== undefined) headers.Authorization = `Bearer ${this.authToken}`;
    const reply = await exchange(
      { host: this.host, port: this.port, agent: this.agent },
      { method: "POST", path: "/", headers, body, what: "write (POST /)" },
      opts.signal,
      opts.timeoutMs ?? this.timeoutMs,
    );
    const doc = seedReply(reply);
    if (doc.err === "" && reply.status === 200) return { version: doc.version };
    if (doc.code === "STALE_FENCING_TOKEN") throw new StaleTokenError(opts.version, doc.version, key);
    if (doc.code !== undefined) throw StorageRequestError.fromReply(doc.code, reply.status, doc.err);
    throw new SeedRefusedError(doc.err, reply.status);
  }

  /** Closes the idle connections. Calls made afterwards open new ones. Safe to call twice. */
  close(): void {
    this.agent.destroy();
  }
}

/** The `{val, version, err[, code]}` of a reply; throws `StorageUnavailableError` for anything else. */
function seedReply(reply: Reply): { version: bigint; err: string; code: string | undefined } {
  const notSeed = (why: string, cause?: unknown) =>
    new StorageUnavailableError(
      `the storage's answer to POST / (${reply.status}) is not the seed protocol: ${why}`,
      cause,
      reply.status,
    );
  let doc: JsonValue;
  try {
    doc = parseJson(reply.body.toString("utf8"));
  } catch (err) {
    throw notSeed("not JSON", err);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc) || doc instanceof RawNumber) {
    throw notSeed("not a JSON object");
  }
  const { version, err, code } = doc;
  if (typeof err !== "string") throw notSeed('no "err" string');
  if (!(version instanceof RawNumber) || !/^-?[0-9]{1,19}$/.test(version.text)) {
    throw notSeed('no integer "version"');
  }
  return { version: BigInt(version.text), err, code: typeof code === "string" ? code : undefined };
}
