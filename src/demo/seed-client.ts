/**
 * The seed's client, done right: take the lock, (client 1) stop while holding it, then write to the
 * storage with the lock's fencing token — the lock key's create revision, not the lease ID. Every step
 * is reported as an event, so a person reads the seed's log lines and the demo reads JSON.
 */
import { connect, type Lock, type LockClient, type Session } from "../client/index.js";
import { describeHolder } from "../client/lock-status.js";
import { SeedRefusedError, StorageUnavailableError } from "../storage/index.js";
import type { Actor, DemoEvent, EventKind } from "./events.js";
import {
  blockPause,
  gcPause,
  keypressPause,
  type PauseMode,
  type PauseResult,
  sigstopPause,
} from "./pause.js";
import { postgresTarget, storageTarget, type WriteTarget } from "./write-target.js";

/** Where the client writes: fencelock's storage server, or a PostgreSQL database behind the guard. */
export type ResourceChoice = { kind: "storage"; url: string } | { kind: "postgres"; url: string };

/** Exit codes a script can rely on. */
export const EXIT_CODES = {
  /** The write was accepted. */
  accepted: 0,
  /** Anything else went wrong (lock service or storage unreachable, timeout). */
  error: 1,
  /** Bad flags. */
  usage: 2,
  /** The storage refused the write as stale (a lower fencing token than it has seen). */
  refused: 3,
  /** Ctrl-C during the keypress pause, or SIGINT. */
  interrupted: 130,
} as const;

/** What the client does. */
export interface SeedClientOptions {
  id: 1 | 2;
  endpoints: string[];
  resource: ResourceChoice;
  lockName: string;
  key: string;
  /** Lease TTL in seconds (the seed's sessionTTL). */
  ttl: number;
  pause: PauseMode;
  /** Send the fencing token with the write (`--no-fencing` turns it off). */
  fencing: boolean;
  /** A person at a terminal presses the key of the keypress pause (the prompt asks them to); default false. */
  person?: boolean;
  /**
   * How to talk to the storage: `v1` (default), fencelock's `PUT /v1/kv/{key}` with a `Fencing-Token`
   * header; `seed`, the seed's `POST /` with the token as `version` (fencelock's storage and etcd's
   * contrib/lock storage both speak it).
   */
  protocol?: "v1" | "seed";
  /**
   * Which number is sent as the token: `revision` (default), the lock key's create revision, a real
   * fencing token; `lease`, the session's lease ID, as etcd's contrib/lock client sends it (increasing only
   * on one etcd member or one lockd; for replaying the seed).
   */
  tokenSource?: "revision" | "lease";
  /** The exit code of an interrupted run: 130 (SIGINT) unless told otherwise (143 for SIGTERM). */
  interruptedCode?: () => number;
  /** Bound on each wait (lock service, lock, storage, SIGSTOP), in ms. */
  timeoutMs: number;
  /** Receives every step. */
  emit: (event: DemoEvent) => void;
  signal?: AbortSignal;
}

function pauseAnnouncement(o: SeedClientOptions, lock: Lock, session: Session): string {
  const lease = session.leaseId.toString(16);
  switch (o.pause.kind) {
    case "keypress":
      return o.person
        ? `paused, holding the lock with token ${lock.token}: let its lease expire (wait ${session.ttl} s, ` +
            `or run 'etcdctl lease revoke ${lease}'), start 'fencelock client 2', then hit any key...`
        : `paused in a synchronous read of standard input, holding the lock with token ${lock.token}`;
    case "sigstop":
      return `holding the lock with token ${lock.token}; waiting to be stopped (SIGSTOP) and continued (SIGCONT)`;
    case "gc":
      return `holding the lock with token ${lock.token}; allocating ${o.pause.garbage} objects and forcing collections`;
    case "block":
      return `holding the lock with token ${lock.token}; blocking the event loop for ${o.pause.ms} ms`;
    case "none":
      return "";
  }
}

/**
 * Announces the pause with `announce`, then pauses. A `sigstop` wait is armed before the announcement:
 * whoever reads it may stop and continue the process at once, and a SIGCONT that came before the
 * listener would be lost.
 */
async function pauseAfter(o: SeedClientOptions, announce: () => void): Promise<PauseResult> {
  if (o.pause.kind === "sigstop") {
    const waiting = sigstopPause({ timeoutMs: o.timeoutMs, signal: o.signal });
    announce();
    return waiting;
  }
  announce();
  switch (o.pause.kind) {
    case "keypress":
      return keypressPause();
    case "gc":
      // Long enough for the lease to run out (a margin over the TTL), or the run shows nothing.
      return gcPause(o.pause.garbage, o.ttl * 1000 + 500);
    case "block":
      return blockPause(o.pause.ms);
    case "none":
      return { pausedMs: 0, detail: "", interrupted: false };
  }
}

/**
 * Runs the client once and resolves to its exit code (`EXIT_CODES`). Never rejects for the failures it
 * reports (they become an `error` event and code 1); an abort of `signal` ends it with code 130. The
 * lock is released and the session closed on every path.
 */
export async function runSeedClient(o: SeedClientOptions): Promise<number> {
  const actor: Actor = `client ${o.id}`;
  const emit = (kind: EventKind, what: string, extra: Partial<DemoEvent> = {}) =>
    o.emit({ timeMs: Date.now(), actor, kind, what, ...extra });
  const held: Held = {};
  emit("start", `${actor} starts`);
  let outcome: Outcome;
  try {
    outcome = await steps(o, emit, held);
  } catch (err) {
    if (o.signal?.aborted) outcome = { code: interruptedCode(o), why: "interrupted" };
    else {
      emit("error", message(err));
      outcome = { code: EXIT_CODES.error, why: "failed" };
    }
  } finally {
    if (held.lock) {
      emit("unlock", `releasing lock ${o.lockName}`);
      await held.lock.unlock().catch(() => {});
    }
    await held.session?.close();
    await held.client?.close();
  }
  emit("exit", `exits with code ${outcome.code} (${outcome.why})`, { exitCode: outcome.code });
  return outcome.code;
}

type Emit = (kind: EventKind, what: string, extra?: Partial<DemoEvent>) => void;
interface Outcome {
  code: number;
  why: string;
}
/** What the steps have opened, for the cleanup. */
interface Held {
  client?: LockClient;
  session?: Session;
  lock?: Lock;
}

async function steps(o: SeedClientOptions, emit: Emit, held: Held): Promise<Outcome> {
  const client = connect({ endpoints: o.endpoints, callTimeoutMs: Math.min(o.timeoutMs, 5000) });
  held.client = client;
  let session: Session;
  try {
    session = await client.session({ ttl: o.ttl, signal: o.signal, timeoutMs: Math.min(o.timeoutMs, 5000) });
  } catch (err) {
    if (o.signal?.aborted) return { code: interruptedCode(o), why: "interrupted" };
    emit("error", `failed to reach the lock service at ${o.endpoints.join(",")}: ${message(err)}`);
    return { code: EXIT_CODES.error, why: "lock service unreachable" };
  }
  held.session = session;
  const leaseId = session.leaseId.toString(16);
  emit(
    "connected",
    `connected to the lock service at ${client.endpoint}; session lease ${leaseId}, TTL ${session.ttl} s`,
    { leaseId },
  );

  emit("waiting", `waiting for lock ${o.lockName}`, { leaseId });
  const lock = await session.mutex(o.lockName).lock({
    signal: o.signal,
    timeoutMs: o.timeoutMs,
    // A waiter that has waited a second says what it waits for.
    onWaiting: ({ holder, waiters }) =>
      emit(
        "waiting",
        holder
          ? `still waiting for lock ${o.lockName}: held by ${describeHolder(holder)}${waiters > 1 ? `; ${waiters} waiting, this one included` : ""}`
          : `still waiting for lock ${o.lockName}: it was just released`,
        { leaseId },
      ),
  });
  held.lock = lock;
  emit("acquired", `acquired lock ${o.lockName} with fencing token ${lock.token} (key ${lock.key})`, {
    token: lock.token,
    leaseId,
    key: lock.key,
  });

  if (o.pause.kind !== "none") {
    const result = await pauseAfter(o, () =>
      emit("pause", pauseAnnouncement(o, lock, session), { token: lock.token, mode: o.pause.kind }),
    );
    if (result.interrupted) {
      emit("error", "interrupted (Ctrl-C) while paused");
      return { code: interruptedCode(o), why: "interrupted" };
    }
    // Right after a synchronous pause no timer has run yet, so ask the session's clock directly.
    const live = session.isLive() && !lock.signal.aborted;
    const belief = live
      ? "the lock client still believes the lease is live"
      : "the session's deadline passed during the pause, but the write goes ahead, as one already in flight would";
    const short =
      result.pausedMs < o.ttl * 1000
        ? ` The pause was shorter than the lease TTL (${o.ttl} s), so the lease did not expire: nothing unsafe can happen in this run.`
        : "";
    emit(
      "resumed",
      `resumed after ${(result.pausedMs / 1000).toFixed(2)} s (${result.detail}); ${belief}.${short}`,
      {
        token: lock.token,
        pausedMs: result.pausedMs,
        mode: o.pause.kind,
      },
    );
  }

  const value = `value from client ${o.id}`;
  const token = o.fencing ? (o.tokenSource === "lease" ? session.leaseId : lock.token) : undefined;
  const seed = o.protocol === "seed";
  const how =
    token === undefined
      ? "without a fencing token"
      : o.tokenSource === "lease"
        ? `with its lease ID ${token} (${session.leaseId.toString(16)}) as the token, as the seed does`
        : `with fencing token ${token}`;
  const via = seed ? " (POST /, the seed's protocol)" : "";
  emit("write", `writing "${value}" to ${o.key} ${how}${via}`, { token: token ?? null, key: o.key, value });
  const timeoutMs = Math.min(o.timeoutMs, 10_000);
  let target: WriteTarget | undefined;
  try {
    target =
      o.resource.kind === "storage"
        ? storageTarget(o.resource.url, timeoutMs, seed ? "seed" : "v1")
        : await postgresTarget(o.resource.url, timeoutMs);
    // Deliberately not lock.signal: the pause stands for one that may come after any local check,
    // and only the resource's token check is a guarantee.
    await target.write(o.key, value, token);
    const note = token === undefined ? " (no token to check)" : "";
    emit("accepted", `write accepted by ${target.label}${note}`, { token: token ?? null, key: o.key, value });
    return { code: EXIT_CODES.accepted, why: "write accepted" };
  } catch (err) {
    const stale = err as { code?: unknown; token?: bigint; maxToken?: bigint; message: string };
    if (stale.code === "STALE_FENCING_TOKEN") {
      emit("refused", `write refused by ${target?.label ?? "the resource"} as stale: ${stale.message}`, {
        token: stale.token ?? null,
        maxToken: stale.maxToken ?? null,
        reason: stale.message,
        key: o.key,
        value,
      });
      return { code: EXIT_CODES.refused, why: "write refused as stale" };
    }
    if (err instanceof SeedRefusedError) {
      emit("refused", `write refused by the storage: ${err.err}`, {
        token: token ?? null,
        maxToken: null,
        reason: err.err,
        key: o.key,
        value,
      });
      return { code: EXIT_CODES.refused, why: "write refused" };
    }
    const text =
      seed || o.resource.kind !== "storage"
        ? message(err)
        : `${message(err)}${notV1Hint(err, o.resource.url)}`;
    emit("error", `write failed: ${text}`, { reason: text });
    return { code: EXIT_CODES.error, why: "write failed" };
  } finally {
    await target?.close().catch(() => {});
  }
}

/**
 * When a `/v1` write got an answer that is not fencelock's, or the connection was dropped after the
 * request went out, the storage is likely one that speaks only the seed's `POST /` (etcd's contrib/lock
 * storage exits on any other request): say so, and name the flag. Empty otherwise.
 */
function notV1Hint(err: unknown, url: string): string {
  if (!(err instanceof StorageUnavailableError)) return "";
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const dropped = cause?.code === "ECONNRESET" || cause?.message === "socket hang up";
  if (err.status === undefined && !dropped) return "";
  const what = dropped ? "dropped the connection on" : `answered ${err.status}, not fencelock's API, to`;
  return (
    `. The storage at ${url} ${what} PUT /v1/kv/...: it does not seem to speak fencelock's /v1 API. ` +
    "For a storage that speaks only the seed's POST / (like etcd's contrib/lock storage, which exits on " +
    "anything else), run with --protocol seed"
  );
}

function interruptedCode(o: SeedClientOptions): number {
  return o.interruptedCode?.() ?? EXIT_CODES.interrupted;
}

function message(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${err.message} [${code}]` : err.message;
  }
  return String(err);
}
