/**
 * `fencelock torture`: many worker processes doing read-modify-write through the lock while faults are
 * injected, then a check of the recorded history. Exit code 0 = no violation, 1 = violations found,
 * 2 = bad flags, 3 = the harness itself failed.
 */
import { writeFile } from "node:fs/promises";
import {
  type Backend,
  createProgress,
  DEFAULT_OPTIONS,
  htmlReport,
  jsonReport,
  type LockScope,
  type Mode,
  parseFaults,
  RESOURCE_KINDS,
  type ResourceKind,
  runTorture,
  summaryText,
  TortureConfigError,
  type TortureOptions,
  validateOptions,
} from "../../torture/index.js";
import { parseDuration as parseFlagDuration, parseFlags, unwritablePath } from "../flags.js";
import { interruptedExitCode, interruptible } from "../run-scope.js";

/** One line for `fencelock help`. */
export const summary = "fault injection across real processes, and a checker of the histories";

const HELP = `usage: fencelock torture [flags]

Starts the resource holding the counters, a lock service and N worker processes that loop lock →
read counter → +1 → write → unlock, injects faults on a seeded schedule, then checks the history for
violations.

  --clients N          worker processes (default ${DEFAULT_OPTIONS.clients})
  --keys K             counters (default ${DEFAULT_OPTIONS.keys})
  --lock per-key|one|election
                       a lock (and fence) per key, one for all keys, or an election: the workers
                       campaign and the leader works with its epoch as the token (default per-key)
  --mode M             unfenced | write-fenced | fenced (default fenced)
  --faults LIST        comma list of pause, kill, lockd-restart, etcd-member, storage-restart,
                       partition, postgres-restart; or all, or none (default none)
  --backend B          lockd | etcd (a three-member cluster) (default lockd)
  --resource R         where the counters live: storage (the fenced storage server), postgres (a
                       table in a real PostgreSQL) or sqlite (a shared file), the last two behind
                       the fencing guard (default storage)
  --duration T         e.g. 60s, 2m, 90000ms (default 30s)
  --seed S             same seed, same fault schedule (default: a new one, printed)
  --ttl SECONDS        the workers' lease TTL (default ${DEFAULT_OPTIONS.ttl})
  --fault-interval T   mean gap between faults (default 2s)
  --think T            worker's pause between read and write (default ${DEFAULT_OPTIONS.thinkMs}ms)
  --op-timeout T       timeout of each storage call and lock wait (default 4s)
  --report PATH        write the JSON report (full history, audit, findings)
  --html PATH          write the HTML timeline, violations marked
  --history-dir DIR    keep the per-worker JSONL histories there
  --quiet              no progress display
  -h, --help           this text

Exit codes: 0 no violation, 1 violations found, 2 bad flags, 3 the harness failed, 130/143 interrupted
(SIGINT/SIGTERM: every process it started is stopped and its temporary data removed first).`;

/** Parses `90s`, `2m`, `1500ms`, `1h` or a bare number of seconds into milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const ms = parseFlagDuration(text);
  if (ms === undefined)
    throw new TortureConfigError(`${flag}: not a duration: "${text}" (e.g. 60s, 2m, 500ms)`);
  return ms;
}

function integer(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new TortureConfigError(`${flag} must be a whole number, got "${text}"`);
  return Number(text);
}

function oneOf<T extends string>(
  text: string | undefined,
  allowed: readonly T[],
  fallback: T,
  flag: string,
): T {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new TortureConfigError(`${flag} must be one of ${allowed.join(", ")}, got "${text}"`);
  }
  return text as T;
}

/** Turns the flags into options; throws `TortureConfigError` on anything malformed. */
export function optionsFromArgs(argv: string[]): {
  options: TortureOptions;
  report?: string;
  html?: string;
  quiet: boolean;
  help: boolean;
} {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new TortureConfigError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  const backend = oneOf<Backend>(v.backend, ["lockd", "etcd"], DEFAULT_OPTIONS.backend, "--backend");
  const resource = oneOf<ResourceKind>(v.resource, RESOURCE_KINDS, DEFAULT_OPTIONS.resource, "--resource");
  const options: TortureOptions = {
    backend,
    resource,
    clients: integer(v.clients, DEFAULT_OPTIONS.clients, "--clients"),
    keys: integer(v.keys, DEFAULT_OPTIONS.keys, "--keys"),
    scope: oneOf<LockScope>(v.lock, ["per-key", "one", "election"], DEFAULT_OPTIONS.scope, "--lock"),
    mode: oneOf<Mode>(v.mode, ["unfenced", "write-fenced", "fenced"], DEFAULT_OPTIONS.mode, "--mode"),
    faults: parseFaults(v.faults ?? "none", backend, resource),
    durationMs:
      v.duration === undefined ? DEFAULT_OPTIONS.durationMs : parseDuration(v.duration, "--duration"),
    seed: v.seed ?? String(Date.now() % 1_000_000),
    ttl: integer(v.ttl, DEFAULT_OPTIONS.ttl, "--ttl"),
    intervalMs:
      v["fault-interval"] === undefined
        ? DEFAULT_OPTIONS.intervalMs
        : parseDuration(v["fault-interval"], "--fault-interval"),
    thinkMs: v.think === undefined ? DEFAULT_OPTIONS.thinkMs : parseDuration(v.think, "--think"),
    opTimeoutMs:
      v["op-timeout"] === undefined
        ? DEFAULT_OPTIONS.opTimeoutMs
        : parseDuration(v["op-timeout"], "--op-timeout"),
    maxOpsPerWorker: DEFAULT_OPTIONS.maxOpsPerWorker,
    ...(v["history-dir"] ? { historyDir: v["history-dir"] } : {}),
  };
  validateOptions(options);
  // Found out now, not after a run of minutes whose report then has nowhere to go.
  for (const [flag, path] of [
    ["--report", v.report],
    ["--html", v.html],
  ] as const) {
    const why = path === undefined ? undefined : unwritablePath(path);
    if (why) throw new TortureConfigError(`${flag} ${path}: ${why}`);
  }
  return {
    options,
    ...(v.report ? { report: v.report } : {}),
    ...(v.html ? { html: v.html } : {}),
    quiet: v.quiet === true,
    help: v.help === true,
  };
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      clients: { type: "string" },
      keys: { type: "string" },
      lock: { type: "string" },
      mode: { type: "string" },
      faults: { type: "string" },
      backend: { type: "string" },
      resource: { type: "string" },
      duration: { type: "string" },
      seed: { type: "string" },
      ttl: { type: "string" },
      "fault-interval": { type: "string" },
      think: { type: "string" },
      "op-timeout": { type: "string" },
      report: { type: "string" },
      html: { type: "string" },
      "history-dir": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof optionsFromArgs>;
  try {
    args = optionsFromArgs(argv);
  } catch (err) {
    if (!(err instanceof TortureConfigError)) throw err;
    console.error(`fencelock torture: ${err.message}\n(fencelock torture --help for the flags)`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const o = args.options;
  console.log(
    `torture: mode ${o.mode}, backend ${o.backend}, resource ${o.resource}, ${o.clients} clients, faults ${o.faults.join(",") || "none"}, ${o.durationMs / 1000} s, seed ${o.seed}`,
  );
  const progress = args.quiet ? undefined : createProgress(process.stderr);
  // SIGINT and SIGTERM end the run early; every process it started is stopped and its temporary data
  // removed before this returns (runTorture's cleanups), then it says so and exits 130 or 143.
  return interruptible(async ({ signal, interruptedBy }) => {
    const interrupted = () => {
      const by = interruptedBy();
      if (!by) return undefined;
      progress?.done();
      console.error(`fencelock torture: interrupted (${by}); every process it started is stopped`);
      return interruptedExitCode(by);
    };
    try {
      const result = await runTorture(o, {
        signal,
        ...(progress ? { onProgress: (p) => progress.update(p) } : {}),
      });
      const code = interrupted();
      if (code !== undefined) return code;
      progress?.done();
      console.log(summaryText(result));
      if (args.report) {
        await writeFile(args.report, jsonReport(result));
        console.log(`report: ${args.report}`);
      }
      if (args.html) {
        await writeFile(args.html, htmlReport(result));
        console.log(`timeline: ${args.html}`);
      }
      return result.check.ok ? 0 : 1;
    } catch (err) {
      const code = interrupted();
      if (code !== undefined) return code;
      progress?.done();
      const cause = err instanceof Error && err.cause ? `\n  cause: ${String(err.cause)}` : "";
      console.error(`fencelock torture: ${err instanceof Error ? err.message : String(err)}${cause}`);
      return 3;
    }
  });
}
