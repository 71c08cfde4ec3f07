/**
 * A guarded unit of work on PostgreSQL: BEGIN, the fence check (docs/design.md §3), the caller's statements,
 * COMMIT, all on one connection. BEGIN and the check go out as one query string (open.ts), so the guard
 * costs no round trip more than the unguarded transaction (`npm run bench:fence`). A stale token, an error
 * or an abort rolls everything back.
 */
import { checkFenceArgs, type FenceArgs } from "../args.js";
import { GuardAbortedError, GuardArgumentError, GuardTimeoutError, RolledBackError } from "../errors.js";
import { openGuarded } from "./open.js";
import { guardErrorOf, isConnectionLoss } from "./pg-errors.js";

/** A connection that runs SQL, like `pg`'s `Client` and `PoolClient`. */
export interface PgClientLike {
  query(sql: string, params?: unknown[]): Promise<unknown>;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeListener(event: "error", listener: (err: Error) => void): unknown;
}

/** A connection lent by a pool, like `pg`'s `PoolClient`. */
export interface PgPoolClientLike extends PgClientLike {
  release(err?: Error | boolean): void;
}

/** A pool of connections, like `pg`'s `Pool`. */
export interface PgPoolLike {
  connect(): Promise<PgPoolClientLike>;
  readonly totalCount: number;
  readonly idleCount: number;
}

/**
 * The connection the guarded function gets for `db`: the pool's client type for a pool (`pg.PoolClient` for
 * a `pg.Pool`, read off its `connect()`), the client itself otherwise.
 */
export type TransactionOf<D> = D extends { totalCount: number; idleCount: number }
  ? D extends { connect(): Promise<infer C>; connect(callback: never): void }
    ? C
    : D extends { connect(): Promise<infer C> }
      ? C
      : never
  : D;

/** PostgreSQL's isolation levels; `undefined` keeps the database's default (READ COMMITTED unless changed). */
export type IsolationLevel = "read committed" | "repeatable read" | "serializable";

/** Options of `withFence`. */
export interface WithFenceOptions extends FenceArgs {
  /** The transaction's isolation level; default: the database's. The guard is correct under each. */
  isolation?: IsolationLevel;
  /** Aborts the transaction: it is rolled back by closing its connection. */
  signal?: AbortSignal;
  /** Bound on the whole transaction in ms (waiting for a connection and the fence row's lock included). */
  timeoutMs?: number;
}

/** What the guarded function receives besides the connection. */
export interface FenceContext {
  readonly fence: string;
  readonly token: bigint;
  /** Aborts when the transaction is aborted or times out; its statements then fail. */
  readonly signal: AbortSignal;
}

const ISOLATION: Record<IsolationLevel, string> = {
  "read committed": "BEGIN ISOLATION LEVEL READ COMMITTED",
  "repeatable read": "BEGIN ISOLATION LEVEL REPEATABLE READ",
  serializable: "BEGIN ISOLATION LEVEL SERIALIZABLE",
};

/** A class, not an object literal with a getter: V8 makes such a literal slowly, once per transaction. */
class Context implements FenceContext {
  constructor(
    readonly fence: string,
    readonly token: bigint,
    private readonly signalOf: () => AbortSignal,
  ) {}

  get signal(): AbortSignal {
    return this.signalOf();
  }
}

/** Transactions on one plain `Client` must not interleave: each waits for the one before it. */
const clientQueues = new WeakMap<object, Promise<unknown>>();

function isPool(db: PgPoolLike | PgClientLike): db is PgPoolLike {
  return "totalCount" in db && "idleCount" in db && typeof (db as PgPoolLike).connect === "function";
}

/**
 * Runs `fn` in one transaction guarded by the fence: opens it (on a connection from `db`, a `pg` `Pool`, or
 * on `db` itself, a connected `pg` `Client`), applies the fence, runs `fn(tx, context)` with `tx` the
 * transaction's connection, and commits. Resolves to what `fn` returns.
 *
 * Rejects, with everything rolled back: with `StaleTokenError` if the fence has seen a higher token (before
 * `fn` runs); with what `fn` throws; with `TransactionConflictError` (retryable) on a serialization failure
 * or deadlock; with `RolledBackError` if a statement failed and `fn` caught it; with
 * `DatabaseUnavailableError` if the connection was lost (`outcome` `unknown` only when lost during COMMIT)
 * or the pool is closed; with `GuardArgumentError` before anything is sent for bad arguments.
 *
 * On abort of `signal` (`GuardAbortedError`) or after `timeoutMs` (`GuardTimeoutError`) the connection is
 * closed, which makes the server roll the transaction back; a pool replaces it, a plain `Client` stays
 * closed. Once COMMIT is sent it is waited for. Calls on one `Client` run one after another; calls on a
 * pool run concurrently, and calls on one fence serialize on its row.
 */
export async function withFence<T, D extends PgPoolLike | PgClientLike>(
  db: D,
  options: WithFenceOptions,
  fn: (tx: TransactionOf<D>, context: FenceContext) => Promise<T> | T,
): Promise<T> {
  const args = checkFenceArgs(options);
  if (typeof fn !== "function") throw new GuardArgumentError("withFence needs a function to run");
  if (typeof db !== "object" || db === null || typeof (db as PgClientLike).query !== "function") {
    throw new GuardArgumentError("withFence needs a pg Pool or a connected pg Client");
  }
  const begin = options.isolation === undefined ? "BEGIN" : ISOLATION[options.isolation];
  if (begin === undefined)
    throw new GuardArgumentError(`unknown isolation level ${String(options.isolation)}`);
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    throw new GuardArgumentError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  }
  if (signal?.aborted) throw new GuardAbortedError(signal.reason);

  const work = fn as (tx: PgClientLike, context: FenceContext) => Promise<T> | T;
  if (isPool(db)) return guarded(db, args, begin, work, signal, timeoutMs);
  const before = clientQueues.get(db) ?? Promise.resolve();
  const mine = before.then(() => guarded(db, args, begin, work, signal, timeoutMs));
  const settled = mine.catch(() => {});
  clientQueues.set(db, settled);
  try {
    return await mine;
  } finally {
    if (clientQueues.get(db) === settled) clientQueues.delete(db);
  }
}

async function guarded<T>(
  db: PgPoolLike | PgClientLike,
  args: Required<FenceArgs>,
  begin: string,
  fn: (tx: PgClientLike, context: FenceContext) => Promise<T> | T,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<T> {
  // Made only when `fn` reads `context.signal`: an AbortController costs more CPU than the rest of the
  // guard's bookkeeping together (`npm run bench:fence`).
  let controller: AbortController | undefined;
  let stopReason: GuardAbortedError | GuardTimeoutError | undefined;
  let phase: "connect" | "work" | "commit" | "done" = "connect";
  let conn: (PgClientLike & { release?(err?: Error | boolean): void }) | undefined;
  let closed = false;
  // An error event on a connection we hold would crash the process if nobody listened; the failing
  // query reports the loss anyway.
  const onConnError = () => {};

  const close = (why: Error) => {
    if (closed || conn === undefined) return;
    closed = true;
    conn.removeListener("error", onConnError);
    if (conn.release) conn.release(why);
    else void (conn as unknown as { end?: () => Promise<void> }).end?.().catch(() => {});
  };
  // Rejects the call's promise at once on abort or timeout, whatever `fn` is waiting for.
  let stopped: (reason: Error) => void = () => {};
  const stop = (reason: GuardAbortedError | GuardTimeoutError) => {
    if (stopReason || phase === "commit" || phase === "done") return;
    stopReason = reason;
    controller?.abort(reason);
    stopped(reason);
    close(reason);
  };
  const onAbort = () => stop(new GuardAbortedError(signal?.reason));
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    timeoutMs === undefined ? undefined : setTimeout(() => stop(new GuardTimeoutError(timeoutMs)), timeoutMs);
  const context = new Context(args.fence, args.token, () => {
    if (controller === undefined) {
      controller = new AbortController();
      if (stopReason) controller.abort(stopReason);
    }
    return controller.signal;
  });

  const work = async (): Promise<T> => {
    if (isPool(db)) {
      const c = await db.connect();
      if (stopReason) {
        // Nothing was sent on it: the pool may lend it again.
        c.release();
        throw stopReason;
      }
      conn = c;
    } else {
      conn = db;
    }
    conn.on("error", onConnError);
    phase = "work";
    try {
      const tx = conn;
      await openGuarded(tx, begin, args);
      const result = await fn(tx, context);
      phase = "commit";
      const committed = (await conn.query("COMMIT")) as { command?: string };
      if (committed?.command === "ROLLBACK") {
        throw new RolledBackError(
          "COMMIT rolled back: a statement in the transaction failed earlier (and its error was caught); nothing was written",
        );
      }
      return result;
    } catch (err) {
      if (phase !== "commit" && !closed) {
        await conn.query("ROLLBACK").catch((rollbackErr: unknown) => close(rollbackErr as Error));
      }
      throw err;
    }
  };

  try {
    return await new Promise<T>((resolve, reject) => {
      stopped = reject;
      work().then(resolve, reject);
    });
  } catch (err) {
    if (stopReason) throw stopReason;
    // A connection that failed must not go back to the pool.
    if (isConnectionLoss(err)) close(err as Error);
    // `phase` is moved on inside `work`, which the compiler does not follow.
    const during = phase as "connect" | "work" | "commit";
    throw guardErrorOf(err, during);
  } finally {
    phase = "done";
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    if (!closed && conn !== undefined) {
      closed = true;
      conn.removeListener("error", onConnError);
      conn.release?.();
    }
  }
}
