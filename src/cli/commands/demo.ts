/**
 * `fencelock demo`: the article's two scenarios between real processes. Parses flags and runs `runDemo`.
 */

import {
  type LockServiceChoice,
  type PauseMode,
  parsePause,
  runDemo,
  type ScenarioName,
} from "../../demo/index.js";
import { parseFlags, parseTtl, unwritablePath } from "../flags.js";
import { interruptedExitCode, interruptible, parseEndpoints } from "../run-scope.js";

/** One line for `fencelock --help`. */
export const summary = "watch a paused lock holder clobber data without fencing, and fencing stop it";

const HELP = `usage: fencelock demo [flags]

Runs the expired-lease scenarios of Kleppmann's "How to do distributed locking" with real processes:
a lock service, a storage server and two clients. Client 1 takes the lock and is stopped; its lease
expires; client 2 takes the lock and writes; client 1 wakes up and writes too.
  unsafe  the storage takes writes without tokens: client 1's late write overwrites client 2's
  fenced  the storage checks fencing tokens: client 1's write is refused (token N < N+1)

flags:
  --scenario S       unsafe, fenced or both (default both)
  --resource R       what the clients write to: storage (default; fencelock's storage server) or
                     postgres (a PostgreSQL server the demo starts from the installed binaries; the
                     fencing guard in the database itself refuses client 1's late write)
  --endpoints LIST   use a running etcd cluster (host:port,...) instead of the embedded lockd
  --etcd             start a local 3-member etcd cluster for the run (needs the etcd binary)
  --pause MODE       how client 1 stops: sigstop (default; the demo sends SIGSTOP/SIGCONT), keypress
                     (the demo presses the key), a duration like 3s, or gc [--garbage N]
  --ttl S            lease TTL in whole seconds, 2 or 2s (default 2)
  --html PATH        where to write the HTML timeline (default fencelock-demo.html)
  --no-html          do not write it
  --json             print events and results as JSON lines, and last {"kind":"html","path"} if a page was written
  --no-color         plain terminal timeline
  -h, --help

exit codes: 0 the demo ran and fencing held, 1 a failure (or fencing did not hold), 2 bad flags,
130/143 interrupted by SIGINT/SIGTERM (every process it started is stopped first)`;

function fail(message: string): number {
  console.error(`fencelock demo: ${message}\n(fencelock demo --help for the flags)`);
  return 2;
}

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  try {
    const parsed = parse(argv);
    if (parsed.positionals.length > 0) return fail(`unexpected argument "${parsed.positionals[0]}"`);
    values = parsed.values;
  } catch (err) {
    return fail((err as Error).message);
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const scenarioFlag = values.scenario ?? "both";
  const scenarios: ScenarioName[] | undefined = {
    unsafe: ["unsafe" as const],
    fenced: ["fenced" as const],
    both: ["unsafe" as const, "fenced" as const],
  }[scenarioFlag];
  if (!scenarios) return fail(`--scenario must be unsafe, fenced or both, got "${scenarioFlag}"`);
  if (values.etcd && values.endpoints !== undefined) return fail("give --etcd or --endpoints, not both");
  const resource = values.resource ?? "storage";
  if (resource !== "storage" && resource !== "postgres") {
    return fail(`--resource must be storage or postgres, got "${resource}"`);
  }
  let lockService: LockServiceChoice = { kind: values.etcd ? "etcd" : "lockd" };
  if (values.endpoints !== undefined) {
    const endpoints = parseEndpoints(values.endpoints);
    if (!endpoints) return fail(`--endpoints must be host:port[,host:port...], got "${values.endpoints}"`);
    lockService = { kind: "endpoints", endpoints };
  }
  let pause: PauseMode;
  try {
    pause = parsePause(values.pause ?? "sigstop", values.garbage);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (pause.kind === "none") return fail("--pause none would show nothing: client 1 must stop");
  const ttl = parseTtl(values.ttl ?? "2", 60);
  if (ttl === undefined) {
    return fail(`--ttl must be whole seconds from 1 to 60 (2 or 2s), got "${values.ttl}"`);
  }
  if (values.html !== undefined && values["no-html"]) return fail("give --html or --no-html, not both");
  const htmlPath = values["no-html"] ? null : (values.html ?? "fencelock-demo.html");
  const unwritable = htmlPath === null ? undefined : unwritablePath(htmlPath);
  if (unwritable) return fail(`--html ${htmlPath}: ${unwritable}`);

  return interruptible(async ({ signal, readerGone, interruptedBy }) => {
    try {
      const { results } = await runDemo({
        scenarios,
        lockService,
        resource,
        pause,
        ttl,
        htmlPath,
        json: values.json === true,
        color: !values["no-color"] && process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
        columns: process.stdout.columns,
        print: (line) => {
          if (!readerGone()) process.stdout.write(`${line}\n`);
        },
        signal,
      });
      const fenced = results.find((r) => r.scenario === "fenced");
      return fenced && !fenced.verdict.correct ? 1 : 0;
    } catch (err) {
      const by = interruptedBy();
      if (by) {
        // runDemo has stopped every process it started before it rejected.
        console.error(`fencelock demo: interrupted (${by}); every process it started is stopped`);
        return interruptedExitCode(by);
      }
      if (readerGone()) return 1;
      throw err;
    }
  });
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      scenario: { type: "string" },
      resource: { type: "string" },
      endpoints: { type: "string" },
      etcd: { type: "boolean" },
      pause: { type: "string" },
      garbage: { type: "string" },
      ttl: { type: "string" },
      html: { type: "string" },
      "no-html": { type: "boolean" },
      json: { type: "boolean" },
      "no-color": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
