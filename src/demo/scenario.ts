/**
 * One scenario of the article, between real processes: client 1 takes the lock and is stopped while
 * holding it, its lease expires, client 2 takes the lock and writes, client 1 wakes up and writes too.
 * "unsafe": no tokens anywhere, the storage accepts everything. "fenced": tokens, and the storage
 * refuses the lower one. What happened is taken from the clients' reports, the lock service's keys and
 * the storage's audit log; the final value is read back from the storage.
 */
import { StorageClient } from "../storage/index.js";
import { attributeLockEvents } from "./attribute.js";
import { auditEvents } from "./audit-events.js";
import { ClientProcess } from "./client-process.js";
import { ScenarioError } from "./errors.js";
import { byTime, type DemoEvent } from "./events.js";
import { type LockObserver, observeLock } from "./lock-observer.js";
import { type PauseMode, pauseFlag } from "./pause.js";
import type { ResourceChoice } from "./seed-client.js";
import { buildTimeline, type ScenarioName, type Timeline } from "./timeline.js";
import { judge, type Verdict } from "./verdict.js";
import { postgresTarget, storageTarget, type WriteTarget } from "./write-target.js";

/**
 * PostgreSQL keeps no audit log of its own for the demo: its answer to a client's write, which the
 * client reports, is the database's lane (a commit, or the guard's rollback of a stale token).
 */
function databaseEvents(event: DemoEvent): DemoEvent[] {
  if (event.kind !== "accepted" && event.kind !== "refused") return [];
  const token = event.token === null || event.token === undefined ? "no token" : `token ${event.token}`;
  const value = event.value === undefined ? "" : `"${event.value}"`;
  const max = event.maxToken === null || event.maxToken === undefined ? "" : `, fence max ${event.maxToken}`;
  return [
    {
      timeMs: event.timeMs,
      actor: "storage",
      kind: event.kind === "accepted" ? "stored" : "rejected",
      what:
        event.kind === "accepted"
          ? `PostgreSQL committed write ${value} (${token})`
          : `PostgreSQL rolled back write ${value} (${token}${max}): stale token`,
      token: event.token ?? null,
      maxToken: event.maxToken ?? null,
      key: event.key,
      reason: event.reason,
      value: event.value,
    },
  ];
}

/** What a scenario runs against. */
export interface ScenarioOptions {
  scenario: ScenarioName;
  /** Lock service endpoints (lockd or etcd). */
  endpoints: string[];
  /** How to name the lock service in the setup line, e.g. `lockd (embedded)`. */
  lockServiceName: string;
  /**
   * Where the clients write. A storage server must run with `--allow-unfenced` for "unsafe" and without
   * for "fenced" (the scenario does not check: it shows what the storage does). PostgreSQL takes the
   * unfenced writes as plain upserts and the fenced ones through the guard; the scenario clears the key
   * first, and the database's answers, relayed by the clients, make its lane.
   */
  resource: ResourceChoice;
  /** How client 1 stops; `sigstop` (the default) means this scenario freezes it with SIGSTOP. */
  pause?: PauseMode;
  /** Lease TTL in seconds, default 2. */
  ttl?: number;
  lockName?: string;
  key?: string;
  /** Bound on the whole scenario, default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Receives every event as it arrives (lock service events not yet attributed to their owner). */
  onEvent?: (event: DemoEvent) => void;
}

/** What a scenario found. */
export interface ScenarioResult {
  scenario: ScenarioName;
  /** Epoch ms the scenario started; event times are epoch ms too. */
  startMs: number;
  /** All events, attributed and in time order. */
  events: DemoEvent[];
  /** The value read back from the storage at the end. */
  finalValue: string | null;
  /** Exit codes of client 1 and client 2. */
  exitCodes: { client1: number | string; client2: number | string };
  verdict: Verdict;
  timeline: Timeline;
}

function setupLine(o: ScenarioOptions, pause: PauseMode, ttl: number): string {
  const how = {
    sigstop: "frozen with SIGSTOP, continued with SIGCONT",
    keypress: "stopped in a synchronous read of its standard input",
    gc: "stopped by allocation and forced garbage collections",
    block: "stopped by a synchronous block of its event loop",
    none: "not stopped",
  }[pause.kind];
  const pg = o.resource.kind === "postgres";
  const storage =
    o.scenario === "unsafe"
      ? pg
        ? "PostgreSQL, clients write without the guard"
        : "storage started with --allow-unfenced, clients write without tokens"
      : pg
        ? "PostgreSQL, each write in a transaction guarded by a fence row that refuses lower tokens"
        : "storage refuses tokens lower than the highest it has seen, clients send their tokens";
  return `Lock service: ${o.lockServiceName}; lease TTL ${ttl} s; client 1 ${how}; ${storage}.`;
}

/**
 * Runs one scenario and resolves with its events, verdict and timeline. Rejects with `ScenarioError`
 * if a client fails to start or a step does not happen within `timeoutMs`, or with the signal's reason
 * on abort; the client processes are killed and the watch stopped on every path.
 */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const pause = o.pause ?? { kind: "sigstop" };
  const ttl = o.ttl ?? 2;
  const lockName = o.lockName ?? "/lock";
  const key = o.key ?? "key0";
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  const left = () => Math.max(1, deadline - Date.now());
  const events: DemoEvent[] = [];
  const collect = (event: DemoEvent) => {
    events.push(event);
    o.onEvent?.(event);
  };
  const demo = (kind: DemoEvent["kind"], what: string) =>
    collect({ timeMs: Date.now(), actor: "demo", kind, what });

  const storage =
    o.resource.kind === "storage" ? new StorageClient({ url: o.resource.url, timeoutMs: 5000 }) : undefined;
  let auditSeq = 0;
  let auditing: Promise<void> = Promise.resolve();
  // Reads the audit entries added since the last read; serialised so none is read twice.
  const readAudit = () => {
    if (!storage) return auditing;
    auditing = auditing.then(async () => {
      const entries = await storage.audit({ after: auditSeq, limit: 1000 }).catch(() => []);
      for (const e of entries) auditSeq = Math.max(auditSeq, e.seq);
      for (const e of auditEvents(entries, key)) collect(e);
    });
    return auditing;
  };
  let target: WriteTarget | undefined;

  const common = [
    "--endpoints",
    o.endpoints.join(","),
    o.resource.kind === "storage" ? "--storage" : "--postgres",
    o.resource.url,
    "--lock",
    lockName,
    "--key",
    key,
    "--ttl",
    String(ttl),
    "--timeout",
    String(Math.ceil(left() / 1000)),
    ...(o.scenario === "unsafe" ? ["--no-fencing"] : []),
  ];
  const onClientEvent = (event: DemoEvent) => {
    collect(event);
    if (event.kind === "accepted" || event.kind === "refused" || event.kind === "error") void readAudit();
    if (!storage) for (const e of databaseEvents(event)) collect(e);
  };
  let client1: ClientProcess | undefined;
  let client2: ClientProcess | undefined;
  let observer: LockObserver | undefined;
  const startMs = Date.now();
  try {
    demo(
      "scenario",
      o.scenario === "unsafe"
        ? "scenario unsafe: the storage takes writes without fencing tokens"
        : "scenario fenced: the storage checks fencing tokens",
    );
    if (storage) {
      // Entries from before this scenario (a storage used twice) are not part of it.
      for (const e of await storage.audit({ limit: 1000, signal: o.signal }))
        auditSeq = Math.max(auditSeq, e.seq);
      target = storageTarget(o.resource.url, 5000);
    } else {
      target = await postgresTarget(o.resource.url, 5000);
      await target.clear?.(key);
    }
    observer = await observeLock({
      endpoints: o.endpoints,
      lockName,
      onEvent: collect,
      timeoutMs: Math.min(left(), 5000),
      signal: o.signal,
    });
    const extra = pause.kind === "gc" ? ["--garbage", String(pause.garbage)] : [];
    client1 = ClientProcess.start(
      "client 1",
      ["1", ...common, "--pause", pauseFlag(pause), ...extra],
      onClientEvent,
    );
    await client1.waitFor("pause", left(), o.signal);
    if (pause.kind === "sigstop") {
      client1.freeze();
      demo("freeze", `sent SIGSTOP to client 1 (pid ${client1.pid}): it stops, keep-alives and all`);
    }
    client2 = ClientProcess.start("client 2", ["2", ...common, "--pause", "none"], onClientEvent);
    const code2 = await client2.waitExit(left(), o.signal);
    if (pause.kind === "sigstop") {
      demo("thaw", `sent SIGCONT to client 1 (pid ${client1.pid})`);
      client1.thaw();
    } else if (pause.kind === "keypress") {
      demo("key", "pressed a key for client 1");
      client1.pressKey();
    }
    const code1 = await client1.waitExit(left(), o.signal);
    await readAudit();
    const finalValue = await target.read(key);
    demo("final", `${target.label} holds ${finalValue === null ? "no value" : `"${finalValue}"`} for ${key}`);
    const attributed = byTime(attributeLockEvents(events));
    const verdict = judge(attributed, finalValue);
    const timeline = buildTimeline({
      scenario: o.scenario,
      setup: setupLine(o, pause, ttl),
      startMs,
      events: attributed,
      verdict,
    });
    return {
      scenario: o.scenario,
      startMs,
      events: attributed,
      finalValue,
      exitCodes: { client1: code1, client2: code2 },
      verdict,
      timeline,
    };
  } catch (err) {
    if (o.signal?.aborted) throw err;
    throw err instanceof ScenarioError
      ? err
      : new ScenarioError(`scenario ${o.scenario} failed: ${(err as Error)?.message ?? String(err)}`, {
          cause: err,
        });
  } finally {
    observer?.stop();
    await Promise.all([client1?.kill(), client2?.kill()]);
    await auditing;
    storage?.close();
    await target?.close().catch(() => {});
  }
}
