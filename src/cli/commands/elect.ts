/**
 * `fencelock elect NAME -- command args…`: runs a shell command while leader of election NAME (etcd's
 * layout, so `etcdctl elect` candidates take part), with the leader's token in its environment, and stops
 * the command if leadership is lost. `fencelock elect NAME --listen` prints each leader change as
 * `etcdctl elect -l` does: the leader's key, then its value, one per line.
 */

import { hostname } from "node:os";
import { connect, DEFAULT_ENDPOINTS } from "../../client/index.js";
import { parsedOrAnswered, parseFlags } from "../flags.js";
import { commonFlags, EXIT, EXIT_CODES_HELP, holdAndRun, splitCommand } from "../guarded-command.js";
import { interruptible } from "../run-scope.js";

/** One line for `fencelock --help`. */
export const summary = "run a command while leader of an election, or print its leader changes";

const HELP = `usage: fencelock elect NAME [--value V] [--ttl S] [--timeout D] [--grace D] [--endpoints LIST] -- command args...
       fencelock elect NAME --listen [--endpoints LIST]

Campaigns in election NAME with value V (default HOST-PID) and, once leader, runs the command with
FENCELOCK_TOKEN (the leader's token: its key's create revision) and FENCELOCK_KEY in its environment;
resigns when it exits. If leadership is lost while the command runs (session lost, key deleted), the
command gets SIGTERM, then SIGKILL after --grace. With --listen, prints the leader now and each change
(new leader or proclaimed value) as two lines, key then value, like etcdctl elect -l, until interrupted.

flags:
  --value V          the value to campaign with (default HOST-PID)
  --listen           print leader changes instead of campaigning
  --ttl S            session TTL in whole seconds (default 10)
  --timeout D        give up waiting to lead after D, e.g. 30s, 500ms (default: wait as long as it takes)
  --grace D          time between SIGTERM and SIGKILL after a loss (default 5s)
  --endpoints LIST   lock service endpoints, comma-separated (default ${DEFAULT_ENDPOINTS.join(",")})
  -h, --help

${EXIT_CODES_HELP}
with --listen: 0 when interrupted, ${EXIT.failed} on failure`;

function fail(message: string): number {
  console.error(`fencelock elect: ${message}\n(fencelock elect --help for the flags)`);
  return EXIT.failed;
}

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const { flags, command } = splitCommand(argv);
  const parsed = parsedOrAnswered(() => parse(flags), HELP, fail);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] === "") return fail("give exactly one election name");
  const common = commonFlags(values);
  if (typeof common === "string") return fail(common);
  const name = positionals[0] as string;
  if (values.listen) {
    if (command.length > 0 || values.value !== undefined)
      return fail("--listen takes no command and no --value");
    return listen(name, common.endpoints, common.ttl);
  }
  if (command.length === 0) return fail("give the command after --, or --listen");
  const value = values.value ?? `${hostname()}-${process.pid}`;
  return holdAndRun({ ...common, command }, async (session, wait) => {
    const leadership = await session.election(name).campaign(value, wait);
    return {
      token: leadership.token,
      key: leadership.key,
      signal: leadership.signal,
      release: () => leadership.resign(),
    };
  });
}

async function listen(name: string, endpoints: string[], ttl: number): Promise<number> {
  const client = connect({ endpoints });
  try {
    return await interruptible(async ({ signal, readerGone }) => {
      try {
        // Observing needs no lease of its own, but the election is reached through a session.
        const session = await client.session({ ttl, signal });
        for await (const leader of session.election(name).observe({ signal })) {
          if (readerGone()) break;
          process.stdout.write(`${leader.key}\n${leader.value.toString()}\n`);
        }
        return 0;
      } catch (err) {
        if (signal.aborted) return 0;
        const code = (err as { code?: unknown }).code;
        console.error(
          `fencelock elect: ${(err as Error).message}${typeof code === "string" ? ` [${code}]` : ""}`,
        );
        return EXIT.failed;
      }
    });
  } finally {
    await client.close();
  }
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      value: { type: "string" },
      listen: { type: "boolean" },
      ttl: { type: "string" },
      timeout: { type: "string" },
      grace: { type: "string" },
      endpoints: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
