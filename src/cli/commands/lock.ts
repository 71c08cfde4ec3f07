/**
 * `fencelock lock NAME -- command args…`: runs a shell command while holding a fencelock mutex, like
 * `etcdctl lock NAME command`, with the fencing token in the command's environment, and stops the command
 * if the lock is lost.
 */

import { DEFAULT_ENDPOINTS } from "../../client/index.js";
import { parsedOrAnswered, parseFlags } from "../flags.js";
import { commonFlags, EXIT, EXIT_CODES_HELP, holdAndRun, splitCommand } from "../guarded-command.js";

/** One line for `fencelock --help`. */
export const summary = "run a command while holding a lock, with its fencing token in the environment";

const HELP = `usage: fencelock lock NAME [--ttl S] [--timeout D] [--grace D] [--endpoints LIST] -- command args...

Waits for lock NAME (FIFO; the same keys as etcdctl lock and Go's concurrency.Mutex), runs the command
with FENCELOCK_TOKEN (the fencing token) and FENCELOCK_KEY in its environment, and unlocks when it exits.
If the session is lost while the command runs (lease expired or revoked), the command gets SIGTERM, then
SIGKILL after --grace: pass FENCELOCK_TOKEN with every write so a late write is refused anyway.

flags:
  --ttl S            session TTL in whole seconds (default 10)
  --timeout D        give up waiting after D, e.g. 30s, 500ms, 2m (default: wait as long as it takes)
  --grace D          time between SIGTERM and SIGKILL after a loss (default 5s)
  --endpoints LIST   lock service endpoints, comma-separated (default ${DEFAULT_ENDPOINTS.join(",")})
  -h, --help

${EXIT_CODES_HELP}`;

function fail(message: string): number {
  console.error(`fencelock lock: ${message}\n(fencelock lock --help for the flags)`);
  return EXIT.failed;
}

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const { flags, command } = splitCommand(argv);
  const parsed = parsedOrAnswered(() => parse(flags), HELP, fail);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] === "") return fail("give exactly one lock name");
  if (command.length === 0) return fail("give the command after --");
  const common = commonFlags(values);
  if (typeof common === "string") return fail(common);
  const name = positionals[0] as string;
  return holdAndRun({ ...common, command }, async (session, wait) => {
    const lock = await session.mutex(name).lock(wait);
    return { token: lock.token, key: lock.key, signal: lock.signal, release: () => lock.unlock() };
  });
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ttl: { type: "string" },
      timeout: { type: "string" },
      grace: { type: "string" },
      endpoints: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
