/**
 * `fencelock storage`: runs the fenced storage server until SIGTERM or SIGINT, then drains in-flight
 * requests and closes the database.
 */
import { readFileSync } from "node:fs";
import { createStorageServer, type StorageServer } from "../../storage/index.js";
import { defaultDataDir, parseFlags, parseListen } from "../flags.js";
import { runFence } from "./storage-fence.js";

/** One line for `fencelock --help`. */
export const summary = "run the fenced storage server (HTTP, SQLite)";

const HELP = `usage: fencelock storage [flags]
       fencelock storage fence reset NAME [--data DIR | --url URL --auth-token T]   (see its --help)

Runs the fenced storage server. Prints {"event":"listening","host":…,"port":…} on stdout when ready;
SIGTERM or SIGINT drains in-flight requests, closes the database and exits 0.

APIs: PUT/GET /v1/kv/{key} with a Fencing-Token header (the lock's token: its key's create revision),
GET /v1/fences/{name}, GET /v1/audit, DELETE /v1/fences/{name} (fence reset; only with --auth-token);
and the seed-compatible POST / {"op","key","val","version"} of etcd's contrib/lock example. A seed
client's "version" is its LEASE ID: it increases only on one etcd member or one lockd, and is never a
real fencing token on a multi-member etcd cluster (each member grants IDs with its own prefix). A lease
ID written to a fence also outranks every later revision token: fencelock storage fence reset NAME.

flags:
  --listen HOST:PORT  address to serve on (default 127.0.0.1:8080; port 0 picks a free one);
                      --host H and --port N are the same, kept as aliases
  --data DIR          database directory (default $XDG_STATE_HOME/fencelock/storage, else
                      ~/.local/state/fencelock/storage: where every fencelock server keeps its data)
  --memory            throwaway in-memory store instead of --data
  --sync normal|full  normal (default): a reply means the write survives kill -9 of this process,
                      the failure fencing is about; full: also an OS crash or power loss, at a much
                      lower write rate (lockd defaults to full: a lock service that lost revisions
                      to a power cut could hand out a token twice). --synchronous is an alias
  --allow-unfenced    accept writes without a fencing token (unsafe; for the demo)
  --auth-token-file F require Authorization: Bearer <token> on every request but /healthz, the
                      token being the contents of file F (one trailing newline dropped)
  --auth-token T      the same with the token on the command line: every local user can read it
                      in /proc, so it prints a warning; prefer the file or the environment
  --audit-keep N      keep the newest N audit entries (at least; older ones are dropped in steps;
                      sequence numbers go on). Default: keep every entry
  -h, --help          this help

environment:
  FENCELOCK_STORAGE_TOKEN   the bearer token, when neither flag gives one

exit codes: 0 stopped by SIGTERM/SIGINT, 1 cannot open the database or listen, 2 bad flags`;

/** The environment variable that may hold the bearer token. */
const TOKEN_ENV = "FENCELOCK_STORAGE_TOKEN";

/** Parses the flags, runs the server, resolves with the exit code once it has stopped. */
export async function run(argv: string[]): Promise<number> {
  if (argv[0] === "fence") return runFence(argv.slice(1));
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (err) {
    console.error(`fencelock storage: ${(err as Error).message}\n(fencelock storage --help for the flags)`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const usage = (message: string) => {
    console.error(`fencelock storage: ${message}\n(fencelock storage --help for the flags)`);
    return 2;
  };
  if (values.listen !== undefined && (values.host !== undefined || values.port !== undefined)) {
    return usage("give --listen HOST:PORT, or its aliases --host and --port, not both");
  }
  const listen = parseListen(values.listen ?? `${values.host ?? "127.0.0.1"}:${values.port ?? "8080"}`);
  if (!listen) {
    return usage(
      values.listen !== undefined
        ? `--listen must be HOST:PORT with a port 0..65535, got ${values.listen}`
        : `--port must be 0..65535, got ${values.port}`,
    );
  }
  if (values.memory && values.data !== undefined) return usage("--data and --memory exclude each other");
  if (values.sync !== undefined && values.synchronous !== undefined) {
    return usage("--synchronous is an alias of --sync: give one");
  }
  const synchronous = values.sync ?? values.synchronous ?? "normal";
  if (synchronous !== "normal" && synchronous !== "full") {
    return usage(`--sync must be normal or full, got ${synchronous}`);
  }
  if (values.memory && (values.sync ?? values.synchronous) !== undefined) {
    return usage("--sync says how writes reach the disk; --memory keeps nothing on disk: give one");
  }
  const token = authToken(values);
  if (!token.ok) {
    console.error(`fencelock storage: ${token.error}`);
    return 2;
  }
  const auditKeep = values["audit-keep"] === undefined ? undefined : Number(values["audit-keep"]);
  if (auditKeep !== undefined && (!/^[1-9][0-9]{0,14}$/.test(values["audit-keep"] ?? "") || !auditKeep)) {
    console.error(
      `fencelock storage: --audit-keep must be a whole number of entries >= 1, got ${values["audit-keep"]}`,
    );
    return 2;
  }

  let server: StorageServer;
  try {
    server = createStorageServer({
      memory: values.memory ?? false,
      dataDir: values.data ?? defaultDataDir("storage"),
      synchronous,
      allowUnfenced: values["allow-unfenced"] ?? false,
      authToken: token.value,
      auditKeep,
    });
  } catch (err) {
    const busy = /locked|busy/i.test((err as Error).message) ? " (is another storage server using it?)" : "";
    console.error(`fencelock storage: cannot open the database: ${(err as Error).message}${busy}`);
    return 1;
  }
  let address: { host: string; port: number };
  try {
    address = await server.listen(listen.port, listen.host);
  } catch (err) {
    await server.close();
    console.error(
      `fencelock storage: cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`,
    );
    return 1;
  }
  console.log(JSON.stringify({ event: "listening", ...address, data: server.store.file }));

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  await server.close();
  console.error(JSON.stringify({ event: "stopped", time: new Date().toISOString() }));
  return 0;
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      listen: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      data: { type: "string" },
      memory: { type: "boolean" },
      sync: { type: "string" },
      synchronous: { type: "string" },
      "allow-unfenced": { type: "boolean" },
      "auth-token": { type: "string" },
      "auth-token-file": { type: "string" },
      "audit-keep": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/**
 * The bearer token from `--auth-token-file`, `--auth-token` (with a warning on stderr) or the
 * environment, in that order of precedence; two flags at once are an error, as is an empty token.
 */
function authToken(
  values: ReturnType<typeof parse>["values"],
): { ok: true; value: string | undefined } | { ok: false; error: string } {
  const file = values["auth-token-file"];
  const flag = values["auth-token"];
  if (file !== undefined && flag !== undefined) {
    return { ok: false, error: "--auth-token and --auth-token-file exclude each other" };
  }
  let value: string | undefined;
  let from: string;
  if (file !== undefined) {
    from = `--auth-token-file ${file}`;
    try {
      // An editor or `echo` ends the file with a newline; it is not part of the token.
      value = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      return { ok: false, error: `cannot read --auth-token-file: ${(err as Error).message}` };
    }
  } else if (flag !== undefined) {
    from = "--auth-token";
    value = flag;
    console.error(
      "fencelock storage: warning: a token given with --auth-token is visible to every local user " +
        `(ps, /proc); use --auth-token-file or ${TOKEN_ENV}`,
    );
  } else {
    from = TOKEN_ENV;
    value = process.env[TOKEN_ENV];
  }
  if (value !== undefined && value.length === 0) return { ok: false, error: `${from}: the token is empty` };
  return { ok: true, value };
}
