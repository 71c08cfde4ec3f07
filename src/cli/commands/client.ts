/**
 * `fencelock client 1|2`: the client of etcd's contrib/lock example, done right. Parses flags and runs `runSeedClient`.
 */

import { DEFAULT_ENDPOINTS } from "../../client/index.js";
// The demo's modules one by one, not its index: this process starts on the demo's critical path,
// and the index also loads the launchers and renderers a client never uses.
import { eventToJson } from "../../demo/events.js";
import { type PauseMode, parsePause } from "../../demo/pause.js";
import { logLine } from "../../demo/report.js";
import { EXIT_CODES, type ResourceChoice, runSeedClient } from "../../demo/seed-client.js";
import { parseDuration, parsedOrAnswered, parseFlags, parseTtl } from "../flags.js";
import { interruptedExitCode, interruptible, parseEndpoints } from "../run-scope.js";

/** One line for `fencelock --help`. */
export const summary =
  "etcd's contrib/lock client 1|2: take the lock, (1) pause, write with the fencing token";

const HELP = `usage: fencelock client 1|2 [flags]

Takes lock --lock with a session of --ttl seconds, (client 1) pauses while holding it, then writes
"value from client N" to --key on the storage with the lock's fencing token.

flags:
  --endpoints LIST   lock service endpoints, comma-separated (default ${DEFAULT_ENDPOINTS.join(",")})
  --storage URL      storage server (default http://127.0.0.1:8080)
  --postgres URL     write to PostgreSQL instead (postgresql://user@host:port/db), in one transaction
                     guarded by the fence named --key (fencelock/postgres); needs the pg package
  --lock NAME        lock name (default /lock)
  --key KEY          storage key (default key0)
  --ttl S            session lease TTL in whole seconds, 2 or 2s (default 2)
  --pause MODE       keypress (default for client 1): a synchronous read of stdin, the whole process
                       stops, keep-alives too, until a key is hit;
                     gc [--garbage N]: allocate N objects (default 1000000), force collections;
                     a duration like 3s or 500ms: block the event loop that long;
                     sigstop: wait to be stopped with SIGSTOP and continued with SIGCONT;
                     none (default for client 2)
  --no-fencing       write without the token (storage must run with --allow-unfenced)
  --protocol P       v1 (default): PUT /v1/kv/KEY with a Fencing-Token header (fencelock's storage);
                     seed: POST / {"op":"write","key","val","version"} with the token as version, as
                       etcd's contrib/lock client does (fencelock's storage and contrib/lock's storage)
  --token-source S   revision (default): the lock key's create revision, a real fencing token;
                     lease: the session's lease ID, as contrib/lock's client sends it (to replay it; it
                       increases only on one etcd member or one lockd, never across an etcd cluster)
  --timeout D        bound on every wait: 60s, 1m, 500ms, or a bare number of seconds (default 60s)
  --json-events      print one JSON event per line (also FENCELOCK_EVENTS=json)
  -h, --help

exit codes: 0 write accepted, 3 write refused (stale), 1 other failures, 2 bad flags, 130/143 interrupted
(SIGINT/SIGTERM)

A refusal of a holder that was never paused means the storage's fence holds a max no holder reaches
(e.g. a lease ID some client wrote as its token): see fencelock storage fence reset --help.`;

const RESET_HINT =
  "(a late holder's refusal is fencing at work; if instead no holder can reach the storage's max, e.g. a " +
  "lease ID written as a token, an operator clears it: fencelock storage fence reset --help)";

function fail(message: string): number {
  console.error(`fencelock client: ${message}\n(fencelock client --help for the flags)`);
  return EXIT_CODES.usage;
}

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parsedOrAnswered(() => parse(argv), HELP, fail);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || (positionals[0] !== "1" && positionals[0] !== "2")) {
    return fail(`give the client number, 1 or 2 (got ${positionals.join(" ") || "nothing"})`);
  }
  const id = positionals[0] === "1" ? 1 : 2;
  const endpoints = parseEndpoints(values.endpoints ?? DEFAULT_ENDPOINTS.join(","));
  if (!endpoints) return fail(`--endpoints must be host:port[,host:port...], got "${values.endpoints}"`);
  if (values.storage !== undefined && values.postgres !== undefined)
    return fail("give --storage or --postgres, not both");
  let resource: ResourceChoice;
  if (values.postgres !== undefined) {
    if (!/^postgres(ql)?:\/\/\S+$/.test(values.postgres)) {
      return fail(
        `--postgres must be a URL like postgresql://user@127.0.0.1:5432/db, got "${values.postgres}"`,
      );
    }
    resource = { kind: "postgres", url: values.postgres };
  } else {
    const storageUrl = values.storage ?? "http://127.0.0.1:8080";
    if (!/^http:\/\/[^\s/]+(:\d{1,5})?\/?$/.test(storageUrl)) {
      return fail(`--storage must be an http:// URL like http://127.0.0.1:8080, got "${storageUrl}"`);
    }
    resource = { kind: "storage", url: storageUrl };
  }
  const ttl = parseTtl(values.ttl ?? "2", 3600);
  if (ttl === undefined)
    return fail(`--ttl must be whole seconds from 1 to 3600 (2 or 2s), got "${values.ttl}"`);
  const timeoutMs = parseDuration(values.timeout ?? "60s", 1000, 86_400_000);
  if (timeoutMs === undefined) {
    return fail(`--timeout must be a duration from 1s to 24h (60s, 1m, 500ms), got "${values.timeout}"`);
  }
  let pause: PauseMode;
  try {
    pause = parsePause(values.pause ?? (id === 1 ? "keypress" : "none"), values.garbage);
  } catch (err) {
    return fail((err as Error).message);
  }
  const protocol = values.protocol ?? "v1";
  if (protocol !== "v1" && protocol !== "seed")
    return fail(`--protocol must be v1 or seed, got "${protocol}"`);
  const tokenSource = values["token-source"] ?? "revision";
  if (tokenSource !== "revision" && tokenSource !== "lease") {
    return fail(`--token-source must be revision or lease, got "${tokenSource}"`);
  }
  if (values["no-fencing"] && values["token-source"] !== undefined) {
    return fail("--token-source and --no-fencing exclude each other");
  }
  const json = values["json-events"] === true || process.env.FENCELOCK_EVENTS === "json";

  return interruptible(({ signal, readerGone, interruptedBy }) =>
    runSeedClient({
      id,
      endpoints,
      resource,
      lockName: values.lock ?? "/lock",
      key: values.key ?? "key0",
      ttl,
      pause,
      fencing: !values["no-fencing"],
      person: process.stdin.isTTY === true,
      protocol,
      tokenSource,
      timeoutMs,
      signal,
      emit: (event) => {
        if (readerGone()) return;
        if (json) process.stdout.write(`${eventToJson(event)}\n`);
        else if (event.kind === "error") console.error(logLine(event));
        else process.stdout.write(`${logLine(event)}\n`);
        if (!json && event.kind === "refused") console.error(RESET_HINT);
      },
      interruptedCode: () => interruptedExitCode(interruptedBy() ?? "SIGINT"),
    }),
  );
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      endpoints: { type: "string" },
      storage: { type: "string" },
      postgres: { type: "string" },
      lock: { type: "string" },
      key: { type: "string" },
      ttl: { type: "string" },
      pause: { type: "string" },
      garbage: { type: "string" },
      "no-fencing": { type: "boolean" },
      protocol: { type: "string" },
      "token-source": { type: "string" },
      timeout: { type: "string" },
      "json-events": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
