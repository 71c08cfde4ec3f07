/**
 * `fencelock fence show|reset NAME`: an operator's look at, and way out of, a fence kept by a database guard
 * (fencelock/postgres, fencelock/sqlite). The storage server's own fences are `fencelock storage`'s.
 */

import { parsedOrAnswered, parseFlags } from "../flags.js";

/** One line for `fencelock --help`. */
export const summary = "show or reset a fence kept in your PostgreSQL or SQLite database by a guard";

const HELP = `usage: fencelock fence show|reset NAME (--postgres URL | --sqlite FILE) [--table T]

  show    print the highest token fence NAME has accepted (or that it has none)
  reset   forget fence NAME, so the next token of any size is accepted as its first

Reset is the way out when a fence holds a token no legitimate holder will reach (one written by a
client of another lock service, or a lease ID sent as a token). It is dangerous: until a newer holder
writes, a stale holder's late write is accepted again. Stop the old writers first.

flags:
  --postgres URL   the database, postgresql://user@host:port/db (needs the pg package)
  --sqlite FILE    the SQLite database file
  --table T        the fence table (default fencelock_fences)
  -h, --help

exit codes: 0 done, 1 failure (database unreachable, no fence table), 2 bad flags`;

function fail(message: string): number {
  console.error(`fencelock fence: ${message}\n(fencelock fence --help for the flags)`);
  return 2;
}

/** Runs the command; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parsedOrAnswered(() => parse(argv), HELP, fail);
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  const [action, name, ...extra] = positionals;
  if (action !== "show" && action !== "reset") return fail(`give show or reset, got "${action ?? ""}"`);
  if (name === undefined || extra.length > 0) return fail("give exactly one fence name");
  if ((values.postgres === undefined) === (values.sqlite === undefined)) {
    return fail("give --postgres URL or --sqlite FILE");
  }
  const options = { table: values.table };
  let outcome: Outcome;
  try {
    outcome =
      values.postgres !== undefined
        ? await onPostgres(values.postgres, action, name, options)
        : await onSqlite(values.sqlite as string, action, name, options);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const what = values.postgres !== undefined ? "PostgreSQL" : values.sqlite;
    const table = values.table ?? "fencelock_fences";
    if (code === "INVALID_ARGUMENT") return fail((err as Error).message);
    const noTable = code === "FENCE_TABLE_MISSING";
    console.error(
      noTable
        ? `fencelock fence: ${what} has no fence table ${table} (no guard has written there)`
        : `fencelock fence: ${what}: ${(err as Error).message}`,
    );
    return 1;
  }
  const { previous, where } = outcome;
  if (action === "show") {
    console.log(
      previous === null ? `fence "${name}" has no token yet` : `fence "${name}": max token ${previous}`,
    );
    return 0;
  }
  console.error(
    `warning: fence "${name}" reset in ${where}. Until a holder with a newer token writes, a stale holder's late write is accepted again.`,
  );
  console.log(
    previous === null
      ? `fence "${name}" had no token; nothing to reset`
      : `fence "${name}" reset (its max token was ${previous})`,
  );
  return 0;
}

type Outcome = { previous: bigint | null; where: string };

async function onPostgres(
  url: string,
  action: string,
  name: string,
  options: { table?: string },
): Promise<Outcome> {
  const pg = await import("pg").catch((err: unknown) => {
    throw new Error("--postgres needs the pg package: npm install pg", { cause: err });
  });
  const guard = await import("../../guard/postgres/index.js");
  const client = new pg.default.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    const previous =
      action === "show"
        ? await guard.fenceMax(client, name, options)
        : await guard.resetFence(client, name, options);
    return { previous, where: "PostgreSQL" };
  } finally {
    await client.end();
  }
}

async function onSqlite(
  file: string,
  action: string,
  name: string,
  options: { table?: string },
): Promise<Outcome> {
  const { default: Database } = await import("better-sqlite3");
  const guard = await import("../../guard/sqlite/index.js");
  // fileMustExist: a mistyped path must not create an empty database.
  const db = new Database(file, { fileMustExist: true, timeout: 10_000 });
  try {
    const previous =
      action === "show" ? guard.fenceMax(db, name, options) : guard.resetFence(db, name, options);
    return { previous, where: file };
  } finally {
    db.close();
  }
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      postgres: { type: "string" },
      sqlite: { type: "string" },
      table: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
