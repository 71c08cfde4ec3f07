/** The entry point of the lock client: `connect()` and the `LockClient` it returns. */
import { ClientClosedError, InvalidArgumentError } from "./errors.js";
import type { Lock } from "./lock.js";
import { Session, type SessionOptions } from "./session.js";
import { type AuthOptions, type TlsOptions, Transport } from "./transport.js";

/** The seed's three local etcd members. */
export const DEFAULT_ENDPOINTS: readonly string[] = ["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"];

/** Options of `connect()`. */
export interface ConnectOptions {
  /** `host:port` of the etcd members (or lockd); default `DEFAULT_ENDPOINTS`. Failover goes in this order. */
  endpoints?: string[];
  /** TLS material (PEM); leave out for plain-text connections. */
  tls?: TlsOptions;
  /** etcd user name and password; the client authenticates on first use and again when the token expires. */
  auth?: AuthOptions;
  /** Deadline of every unary call in ms, default 5000. */
  callTimeoutMs?: number;
}

/** What `withLock`'s function receives. */
export interface LockContext {
  /** The fencing token; send it with every write to the guarded resource. */
  token: bigint;
  /** The lock key. */
  key: string;
  /** Aborts when the lock can no longer be trusted (session lost) and when the function's turn is over. */
  signal: AbortSignal;
}

/** Options of `withLock`. */
export interface WithLockOptions {
  /** TTL of the session made for this call, in seconds, default 10. */
  ttl?: number;
  /** Aborts the wait for the lock (and the session grant). */
  signal?: AbortSignal;
  /** Bound on the wait for the lock in ms (and on the session grant). */
  timeoutMs?: number;
}

/**
 * A connection to an etcd cluster (or lockd). Sessions made through it share its channels. Nothing is
 * sent until the first session.
 */
export class LockClient {
  private readonly transport: Transport;
  private readonly sessions = new Set<Session>();
  private closing: Promise<void> | undefined;

  /** @internal Use `connect()`. */
  constructor(options: ConnectOptions = {}) {
    this.transport = new Transport({
      endpoints: options.endpoints ?? [...DEFAULT_ENDPOINTS],
      tls: options.tls,
      auth: options.auth,
      callTimeoutMs: options.callTimeoutMs ?? 5000,
    });
  }

  /** The endpoint requests go to now; it moves to the next one when a member becomes unavailable. */
  get endpoint(): string {
    return this.transport.endpoint;
  }

  /**
   * Grants a lease and starts a session on it. Rejects with `InvalidArgumentError` for a bad `ttl`, with
   * `AbortedError` if `signal` aborts, with `CallTimeoutError` after `timeoutMs`, with
   * `ClientClosedError` after `close()`, or with the transport's typed error. Each call makes a new session.
   */
  async session(options: SessionOptions = {}): Promise<Session> {
    if (this.closing) throw new ClientClosedError();
    const session = await Session.grant(this.transport, options, (s) => this.sessions.delete(s));
    if (this.closing) {
      await session.close();
      throw new ClientClosedError();
    }
    this.sessions.add(session);
    return session;
  }

  /**
   * Runs `fn` while holding lock `name`, in a session of its own: grants a lease, waits for the lock,
   * runs `fn({ token, key, signal })`, unlocks and closes the session, also when `fn` throws. Resolves to
   * what `fn` returns; rejects with what `fn` throws (a failed unlock never hides it), or like `lock()`
   * (`SessionExpiredError`, `LockTimeoutError`, `AbortedError`, transport errors) if the lock is not
   * acquired. Each call is independent.
   */
  async withLock<T>(
    name: string,
    fn: (context: LockContext) => Promise<T> | T,
    options: WithLockOptions = {},
  ): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock needs a function");
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    const session = await this.session({
      ttl: options.ttl,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    });
    try {
      const mutex = session.mutex(name);
      const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const lock: Lock = await mutex.lock({ signal: options.signal, timeoutMs });
      let result: T;
      try {
        result = await fn({ token: lock.token, key: lock.key, signal: lock.signal });
      } catch (err) {
        await lock.unlock().catch(() => {});
        throw err;
      }
      await lock.unlock();
      return result;
    } finally {
      await session.close();
    }
  }

  /**
   * Closes every session of this client (revoking their leases, which releases their locks) and then the
   * channels. Later calls on the client reject with `ClientClosedError`. Never rejects; a second call
   * returns the first call's promise.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.sessions].map((s) => s.close()));
      this.transport.close();
    })();
    return this.closing;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Makes a lock client. Throws `InvalidArgumentError` for a malformed endpoint or option; connects lazily,
 * so an unreachable cluster shows up on the first call.
 */
export function connect(options: ConnectOptions = {}): LockClient {
  return new LockClient(options);
}
