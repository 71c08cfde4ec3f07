/**
 * A won election: the leader's token (its epoch), a signal that aborts when leadership is lost, proclaim
 * and resign. Leadership is lost when the session ends, on `resign()`, or when someone deletes the key; the
 * last is seen by watching the key itself, started only once someone asks for the signal.
 */
import "./dispose.js";
import { publish } from "./diagnostics.js";
import { InvalidArgumentError, NotLeaderError, ResignedError } from "./errors.js";
import { type Bytes, bytes } from "./guarded-txn.js";
import { deleteIfTxn, type LockKeys, putIfTxn, txn } from "./kv.js";
import type { Session } from "./session.js";
import { waitForDelete } from "./watch.js";

/** Leadership of an election, held through a session. Returned by `election.campaign()`. */
export class Leadership {
  /** The leader's token: the create revision of its key. Strictly increases from leader to leader. */
  readonly token: bigint;
  /** The leader's key, `<prefix>/<leaseId hex>`. */
  readonly key: string;
  private controller: AbortController | undefined;
  private resigned = false;
  private resigning: Promise<void> | undefined;
  private turnGiven = false;
  private readonly onSessionEnd = () => this.lose(this.session.signal.reason);

  /** @internal Created by `Election`. */
  constructor(
    private readonly session: Session,
    private readonly keys: LockKeys,
    token: bigint,
    private readonly giveTurn: () => void,
  ) {
    this.key = keys.key.toString();
    this.token = token;
  }

  /**
   * Aborts when leadership is lost: with `SessionExpiredError` when the session ends, with `NotLeaderError`
   * when someone else deletes the key, with `ResignedError` on `resign()`, and with the transport's typed
   * error if the key can no longer be watched (leadership then cannot be vouched for). A hint: check it
   * before I/O, but rely on the token. Made on first use, with the watch on the key.
   */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      if (this.resigned) controller.abort(new ResignedError(this.key));
      else if (this.session.signal.aborted) this.onSessionEnd();
      else {
        this.session.signal.addEventListener("abort", this.onSessionEnd, { once: true });
        waitForDelete(this.session.transport, this.keys.key, this.token, controller.signal, () => {}).then(
          () => {
            this.lose(new NotLeaderError(this.key, this.token));
            // The lease may be what went: let the session learn it now rather than at its next keep-alive.
            this.session.checkLease().catch(() => {});
          },
          (err: unknown) => {
            if (!controller.signal.aborted) this.lose(err);
          },
        );
      }
    }
    return this.controller.signal;
  }

  /**
   * Sets the leader's value to `value`, only while this leadership holds: a Txn guarded by the key's create
   * revision. Rejects with `NotLeaderError` if it no longer does (also at once after `resign()`), and then
   * nothing was written; with `InvalidArgumentError` for a value that is not a string or bytes; with
   * `AbortedError` if `signal` aborts, `CallTimeoutError` after `timeoutMs`, or another transport error,
   * after which the value may or may not have been written. Each call is one write.
   */
  async proclaim(value: Bytes, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    const put = putIfTxn(this.keys, this.token, this.session.leaseId, bytes(value, "value"));
    const { signal, timeoutMs } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`);
    }
    if (this.resigned) throw new NotLeaderError(this.key, this.token);
    const res = await txn(
      this.session.transport,
      put,
      signal,
      timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
    );
    if (!res.succeeded) throw new NotLeaderError(this.key, this.token);
  }

  /**
   * Gives up leadership: deletes the key only if it still has this leadership's create revision, so a late
   * resign never touches a newer candidate's key; the next candidate then leads. Aborts `signal` with
   * `ResignedError` and lets the next local campaign of the same session go on. Resolves without error if
   * the session has already ended (the key went with the lease). Rejects with the transport's typed error
   * if etcd cannot be reached while the session is live; the key then goes with the lease. Idempotent:
   * once it resolved, later calls resolve at once; after a rejection, a later call tries again.
   */
  resign(): Promise<void> {
    this.resigning ??= this.release().catch((err: unknown) => {
      this.resigning = undefined;
      throw err;
    });
    return this.resigning;
  }

  /** Same as `resign()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.resign();
  }

  private lose(reason: unknown): void {
    this.session.signal.removeEventListener("abort", this.onSessionEnd);
    this.controller?.abort(reason);
  }

  private async release(): Promise<void> {
    this.resigned = true;
    this.lose(new ResignedError(this.key));
    const transport = this.session.transport;
    try {
      if (!transport.isClosed) await txn(transport, deleteIfTxn(this.keys, this.token));
    } catch (err) {
      if (!this.session.signal.aborted) throw err;
    } finally {
      if (!this.turnGiven) {
        this.turnGiven = true;
        this.giveTurn();
      }
    }
    const name = this.keys.prefix.subarray(0, -1).toString();
    publish({ event: "released", name, key: this.key, revision: this.token });
  }
}
