/**
 * `fencelock demo` end to end: starts the lock service (embedded lockd, a local etcd cluster, or given
 * endpoints) and a storage server per scenario, runs the scenarios one after the other with a live line
 * per event, then prints the terminal timelines and writes the HTML page.
 */
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { startEtcdCluster, startLockd, startPostgres, startStorage } from "../testkit/index.js";
import { type DemoEvent, eventToJson } from "./events.js";
import { LiveLog } from "./live.js";
import type { PauseMode } from "./pause.js";
import { renderHtml } from "./render-html.js";
import { renderTerminal } from "./render-terminal.js";
import { liveLine } from "./report.js";
import { runScenario, type ScenarioResult } from "./scenario.js";
import type { ResourceChoice } from "./seed-client.js";
import type { ScenarioName } from "./timeline.js";

/** Where the lock service comes from. */
export type LockServiceChoice =
  | { kind: "lockd" }
  | { kind: "etcd" }
  | { kind: "endpoints"; endpoints: string[] };

/** Options of `runDemo`. */
export interface DemoOptions {
  scenarios: ScenarioName[];
  lockService: LockServiceChoice;
  /**
   * What the clients write to: fencelock's storage server (default), or a PostgreSQL server the demo starts
   * from the installed binaries, where the fencing guard refuses client 1's late write.
   */
  resource?: "storage" | "postgres";
  /** How client 1 stops; default SIGSTOP from the demo. */
  pause?: PauseMode;
  /** Lease TTL in seconds, default 2. */
  ttl?: number;
  lockName?: string;
  key?: string;
  /** Where to write the HTML page; `null` for none. */
  htmlPath: string | null;
  /** Print JSON lines instead of text. */
  json: boolean;
  /** Colour the terminal timeline. */
  color: boolean;
  /** Terminal width for the timeline, default 100. */
  columns?: number;
  /** Receives each line of output. */
  print: (line: string) => void;
  signal?: AbortSignal;
}

/** What `runDemo` did. */
export interface DemoResult {
  results: ScenarioResult[];
  /** The absolute path of the HTML page written, if any. */
  htmlPath: string | undefined;
}

interface Services {
  name: string;
  endpoints: string[];
  resource: (scenario: ScenarioName) => ResourceChoice;
  stop(): Promise<void>;
}

async function startServices(o: DemoOptions): Promise<Services> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
  // The first start that fails aborts the others, and every start ends before the cleanup: a storage
  // server that became ready after the cleanup would keep this process (and itself) alive.
  const abort = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, abort.signal]) : abort.signal;
  let failure: unknown;
  const settle = <T>(start: Promise<T>) =>
    start.catch((err: unknown) => {
      failure ??= err;
      abort.abort();
      return undefined;
    });
  try {
    const lock = (async () => {
      if (o.lockService.kind === "endpoints") {
        return { name: `etcd at ${o.lockService.endpoints.join(",")}`, endpoints: o.lockService.endpoints };
      }
      if (o.lockService.kind === "etcd") {
        const cluster = await startEtcdCluster({ size: 3, signal });
        stops.push(() => cluster.stop());
        return {
          name: `etcd, 3 local members (${cluster.endpoints.join(",")})`,
          endpoints: cluster.endpoints,
        };
      }
      const lockd = await startLockd({ memory: true, signal });
      stops.push(() => lockd.stop());
      return { name: `lockd, embedded (${lockd.endpoint})`, endpoints: lockd.endpoints };
    })();
    const resources = new Map<ScenarioName, ResourceChoice>();
    const resourceStarts =
      o.resource === "postgres"
        ? [
            (async () => {
              const pg = await startPostgres({ signal });
              stops.push(() => pg.stop());
              for (const scenario of o.scenarios)
                resources.set(scenario, { kind: "postgres", url: pg.connectionString });
            })(),
          ]
        : o.scenarios.map(async (scenario) => {
            const s = await startStorage({ memory: true, allowUnfenced: scenario === "unsafe", signal });
            stops.push(() => s.stop());
            resources.set(scenario, { kind: "storage", url: s.url });
          });
    const [service] = await Promise.all([settle(lock), ...resourceStarts.map(settle)]);
    // A failed start resolved to undefined.
    if (failure !== undefined || service === undefined) throw failure;
    return {
      name: service.name,
      endpoints: service.endpoints,
      resource: (scenario) => resources.get(scenario) as ResourceChoice,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Runs the demo. Resolves once every scenario has run and the page is written; rejects with
 * `ScenarioError` (or the launcher's `LaunchError`) if a part fails, or with the signal's reason on
 * abort. Every process it started is stopped on every path.
 */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const print = o.print;
  if (!o.json) {
    const what = o.resource === "postgres" ? "PostgreSQL" : "the storage servers";
    print(`fencelock demo: starting the lock service and ${what}...`);
  }
  const services = await startServices(o);
  const results: ScenarioResult[] = [];
  try {
    if (!o.json) print(`lock service: ${services.name}`);
    for (const [i, scenario] of o.scenarios.entries()) {
      if (!o.json) {
        print("");
        print(
          `━━ scenario ${i + 1}/${o.scenarios.length}: ${scenario} ━━ ${resourceLabel(services.resource(scenario))}`,
        );
      }
      let startMs = Date.now();
      const live = new LiveLog((e: DemoEvent) => {
        if (e.kind === "scenario") startMs = e.timeMs;
        print(o.json ? jsonLine(scenario, e, startMs) : liveLine(e, startMs));
      });
      try {
        const result = await runScenario({
          scenario,
          endpoints: services.endpoints,
          lockServiceName: services.name.replace(/ \(.*\)$/, ""),
          resource: services.resource(scenario),
          pause: o.pause,
          ttl: o.ttl,
          lockName: o.lockName,
          key: o.key,
          signal: o.signal,
          onEvent: (e) => live.push(e),
        });
        live.close();
        results.push(result);
      } finally {
        live.close();
      }
    }
  } finally {
    await services.stop();
  }

  let htmlPath: string | undefined;
  if (o.htmlPath !== null) {
    htmlPath = resolve(o.htmlPath);
    const page = renderHtml(
      results.map((r) => ({
        timeline: r.timeline,
        events: r.events.map((e) => ({ ...e, timeMs: e.timeMs - r.timeline.originMs })),
      })),
      new Date(),
    );
    await writeFile(htmlPath, page);
  }

  if (o.json) {
    for (const r of results) print(JSON.stringify(resultJson(r)));
    if (htmlPath) print(JSON.stringify({ kind: "html", path: htmlPath }));
  } else {
    for (const r of results) {
      print("");
      print(renderTerminal(r.timeline, { width: Math.max(40, (o.columns ?? 100) - 16), color: o.color }));
    }
    print("");
    print("summary:");
    for (const r of results) {
      const expected =
        r.scenario === "unsafe"
          ? r.verdict.correct
            ? "(this time the pause did not overlap client 2's write)"
            : "(what the article warns about: a lock without fencing is not safe)"
          : r.verdict.correct
            ? "(fencing tokens kept the data safe)"
            : "(unexpected: fencing should have prevented this)";
      print(
        `  ${r.scenario.padEnd(7)} ${r.verdict.correct ? "RIGHT" : "WRONG"}: final value ${quote(r.finalValue)} ${expected}`,
      );
    }
    if (htmlPath) print(`\ntimeline picture: ${htmlPath}`);
  }
  return { results, htmlPath };
}

function resourceLabel(r: ResourceChoice): string {
  return r.kind === "storage" ? `storage ${r.url}` : `PostgreSQL ${r.url}`;
}

function quote(v: string | null): string {
  return v === null ? "(none)" : `"${v}"`;
}

function jsonLine(scenario: ScenarioName, e: DemoEvent, startMs: number): string {
  return `{"scenario":"${scenario}","sinceStartMs":${e.timeMs - startMs},${eventToJson(e).slice(1)}`;
}

function resultJson(r: ScenarioResult): Record<string, unknown> {
  return {
    scenario: r.scenario,
    kind: "result",
    finalValue: r.finalValue,
    expectedValue: r.verdict.expectedValue,
    correct: r.verdict.correct,
    verdict: r.verdict.text,
    exitCodes: r.exitCodes,
    writes: r.verdict.writes.map((w) => ({
      client: w.actor,
      token: w.token === null ? null : w.token.toString(10),
      value: w.value,
      accepted: w.accepted,
      maxToken: w.maxToken === null ? null : w.maxToken.toString(10),
      stale: w.stale,
      reason: w.reason,
    })),
  };
}
