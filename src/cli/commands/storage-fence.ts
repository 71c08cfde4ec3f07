/**
 * `fencelock storage fence reset NAME`: an operator's recovery of a fence whose max no holder can reach
 * (e.g. a lease ID that a seed client sent as its "version"). Offline on the data directory of a stopped
 * server, or online through `DELETE /v1/fences/{name}` of a server started with `--auth-token`.
 */

import { existsSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import { StorageClient } from "../../storage/index.js";
import { SqliteStore } from "../../storage/sqlite-store.js";
import { defaultDataDir, parsedOrAnswered, parseFlags } from "../flags.js";

const HELP = `usage: fencelock storage fence reset NAME [--data DIR | --url URL --auth-token T]

Forgets the highest fencing token fence NAME has seen (by default a fence is named after its key), so the
next write with a token of any size is accepted. The audit log records the reset, who made it and the max
the fence had. For a fence whose max no holder can reach: e.g. a seed client (etcd's contrib/lock) sent
its lease ID, a number near 2^62, as "version", and every later fencelock holder is refused.

DANGER: until a holder writes with a newer token, a reset also lets a stale holder through: a paused
client, or one still sending lease IDs, can overwrite newer data. Stop the writers of the fence first.

  offline (default): on the data directory of a stopped server (SQLite, opened exclusively: it is
                     refused while a storage server holds the directory; it waits 2 s for the lock)
    --data DIR       the server's --data (default ~/.local/state/fencelock/storage, as the server's)
  online:            on a running server, which must run with --auth-token (else 403 ADMIN_DISABLED);
                     the only way for a --memory server
    --url URL        the server, e.g. http://127.0.0.1:8080
    --auth-token T   its --auth-token
  -h, --help

exit codes: 0 reset, 1 failed (server busy, refused, unreachable, no database), 2 bad flags`;

const WARNING =
  "warning: until a holder writes with a newer token, any token passes this fence: a stale holder (paused, " +
  "or sending lease IDs) can overwrite newer data. Stop the fence's writers before a reset.";

/** Runs `fence reset …` (argv after `storage fence`); resolves with the exit code. */
export async function runFence(argv: string[]): Promise<number> {
  const parsed = parsedOrAnswered(
    () => parse(argv),
    HELP,
    (message) => {
      console.error(`fencelock storage fence: ${message}\n\n${HELP}`);
      return 2;
    },
  );
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals[0] !== "reset" || positionals.length !== 2 || (positionals[1] as string).length === 0) {
    console.error(
      `fencelock storage fence: expected "reset NAME", got "${positionals.join(" ")}"\n\n${HELP}`,
    );
    return 2;
  }
  const name = positionals[1] as string;
  if (values.url !== undefined && values.data !== undefined) {
    console.error("fencelock storage fence reset: --url and --data exclude each other");
    return 2;
  }
  if (values.url === undefined && values["auth-token"] !== undefined) {
    console.error("fencelock storage fence reset: --auth-token goes with --url (an online reset)");
    return 2;
  }
  const done = (previousMax: bigint | null, seq: number, where: string) => {
    const was = previousMax === null ? "had no max" : `had max ${previousMax}`;
    console.log(`fence ${JSON.stringify(name)} reset ${where}: it ${was}; audit entry ${seq}`);
    console.error(WARNING);
    return 0;
  };

  if (values.url !== undefined) {
    let client: StorageClient;
    try {
      client = new StorageClient({ url: values.url, authToken: values["auth-token"] });
    } catch (err) {
      console.error(`fencelock storage fence reset: ${(err as Error).message}`);
      return 2;
    }
    try {
      const { previousMax, seq } = await client.resetFence(name);
      return done(previousMax, seq, `on ${values.url}`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      console.error(`fencelock storage fence reset: ${(err as Error).message}${code ? ` [${code}]` : ""}`);
      return 1;
    } finally {
      client.close();
    }
  }

  const dir = values.data ?? defaultDataDir("storage");
  if (!existsSync(join(dir, "storage.sqlite"))) {
    console.error(`fencelock storage fence reset: no storage database in ${dir} (give the server's --data)`);
    return 1;
  }
  let store: SqliteStore;
  try {
    store = new SqliteStore({ dataDir: dir });
  } catch (err) {
    const busy = /locked|busy/i.test((err as Error).message)
      ? ": a storage server holds it; stop the server, or reset online with --url (the server needs --auth-token)"
      : "";
    console.error(`fencelock storage fence reset: cannot open ${dir}: ${(err as Error).message}${busy}`);
    return 1;
  }
  try {
    const by = `fencelock storage fence reset, offline on ${dir}, by ${operator()}`;
    const { previousMax, seq } = store.transaction(() => store.resetFence(name, by));
    return done(previousMax, seq, `in ${dir}`);
  } catch (err) {
    const busy = /locked|busy/i.test((err as Error).message)
      ? " (a storage server holds it; stop it first)"
      : "";
    console.error(`fencelock storage fence reset: ${(err as Error).message}${busy}`);
    return 1;
  } finally {
    store.close();
  }
}

/** Who runs the command, as the audit log names them. */
function operator(): string {
  let user = "an unknown user";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (e.g. a container): the host and pid still say where it came from.
  }
  return `${user} on ${hostname()} (pid ${process.pid})`;
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      url: { type: "string" },
      "auth-token": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
