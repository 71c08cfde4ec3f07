/**
 * Launches a real PostgreSQL server from the installed binaries: `initdb` into a fresh temporary
 * directory, then `postgres` on a free loopback port, ready when it logs that it accepts connections.
 * PostgreSQL refuses to run as root, so as root both run as the `postgres` system user (spawned with
 * that user's uid/gid, so the PID we hold is the postmaster's own). `crash()` is PostgreSQL's immediate
 * shutdown and `start()` brings the same data back through crash recovery.
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, chown, readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";
// `Symbol.asyncDispose` on Node 20 releases before 20.4.
import "../client/dispose.js";
import { type Child, freePort, LaunchError, launch, tempDir } from "./process.js";

const run = promisify(execFile);

/** The superuser that `initdb` creates. */
const USER = "fencelock";
/** The database every cluster has from `initdb` on. */
const DATABASE = "postgres";
/** How many times the first start is retried on a new port after losing a port race. */
const PORT_RETRIES = 3;
/** How long `crash()` and `stop()` wait for the postmaster before SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** Settings the launcher owns; a caller's `settings` may not change them. */
const RESERVED = new Set([
  "listen_addresses",
  "port",
  "unix_socket_directories",
  "data_directory",
  "config_file",
  "hba_file",
  "ident_file",
  "fsync",
]);
// Loopback only: the Unix socket lives in the server's own private directory, TCP is 127.0.0.1.
const HBA = `# Written by fencelock's test kit: trust, on loopback only.
local all all trust
host all all 127.0.0.1/32 trust
`;

/** Options of `startPostgres`. */
export interface PostgresOptions {
  /** Aborts `initdb` and every start (the first and later `start()` calls) with `LaunchError`. */
  signal?: AbortSignal;
  /** Time limit for `initdb`, and separately for each server start to become ready; default 30 s. */
  timeoutMs?: number;
  /**
   * PostgreSQL's `fsync`; default `false`, for speed on shared test machines. That is safe for what this
   * launcher simulates: `crash()` kills processes, not the machine, so every committed write is already
   * in the operating system's cache and survives it. Set `true` when a benchmark must pay for flushes to
   * disk as production does, or when anything stronger than a process crash is tested.
   */
  fsync?: boolean;
  /**
   * More server settings, passed as `-c name=value`, e.g. `{ max_connections: 200 }`. Booleans become
   * `on`/`off`. Address, port, socket directory, file locations and `fsync` (see above) are the
   * launcher's: naming one throws `TypeError`, as does a malformed name or value.
   */
  settings?: Record<string, string | number | boolean>;
  /** Print the server's log on this process's standard error. */
  verbose?: boolean;
}

/** What `pg.Pool` and `pg.Client` take to reach the server (no password: loopback trust). */
export interface PostgresConnectionConfig {
  host: string;
  port: number;
  user: string;
  database: string;
}

/** A running (or crashed) PostgreSQL server with its own temporary data directory. */
export interface PostgresHandle {
  /** `127.0.0.1`. */
  readonly host: string;
  /** The TCP port, the same across `crash()` and `start()`. */
  readonly port: number;
  /** The superuser, `fencelock`. */
  readonly user: string;
  /** The database to use, `postgres`. */
  readonly database: string;
  /** `postgresql://fencelock@127.0.0.1:<port>/postgres`. */
  readonly connectionString: string;
  /** The data directory (inside the temporary directory that `stop()` removes). */
  readonly dataDir: string;
  /** The current postmaster process (a new one after `start()`). */
  readonly child: Child;
  /** A new object each call, for `new pg.Pool({ ...pg.pgConfig(), max: 4 })`. */
  pgConfig(): PostgresConnectionConfig;
  /**
   * Crashes the server like `pg_ctl stop -m immediate`: SIGQUIT to the postmaster, which kills its
   * backends at once without a checkpoint; resolves when it has exited (SIGKILL after 10 s). Open
   * connections break. Does nothing if the server is not running.
   */
  crash(): Promise<void>;
  /**
   * Starts the server again on the same data and port, after `crash()`; it runs crash recovery, so
   * every committed transaction is there. Resolves once it accepts connections; at once if it is
   * already running (a second concurrent call shares the first's start). Rejects with `LaunchError` if
   * it does not become ready, on `signal` abort, or after `stop()`.
   */
  start(): Promise<void>;
  /**
   * Fast shutdown (SIGINT to the postmaster: open transactions roll back, connections close), SIGKILL
   * after 10 s, then removes the temporary directory. Safe to call more than once.
   */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates a database cluster in a fresh temporary directory and starts PostgreSQL on it. Resolves once
 * the server accepts connections. Rejects with `LaunchError` if PostgreSQL is not installed, if this
 * process is root and there is no `postgres` user, if `initdb` fails, or if the server exits, times out
 * or is aborted first; the temporary directory is removed before it rejects. Every call starts a new
 * server.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresHandle> {
  const settings = checkSettings(options.settings ?? {});
  const timeoutMs = options.timeoutMs ?? 30_000;
  const bin = await findBinaries();
  const owner = await serverOwner();
  const temp = await tempDir("postgres");
  const dataDir = join(temp.path, "data");
  const env = { ...process.env, LC_ALL: "C" };
  const spawnAs = { uid: owner?.uid, gid: owner?.gid };

  const launchServer = (port: number) =>
    launch({
      name: "postgres",
      command: join(bin, "postgres"),
      args: [
        "-D",
        dataDir,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `port=${port}`,
        "-c",
        `unix_socket_directories=${temp.path}`,
        "-c",
        `fsync=${options.fsync ? "on" : "off"}`,
        ...settings.flatMap((s) => ["-c", s]),
      ],
      cwd: temp.path,
      env,
      ...spawnAs,
      readyLine: (line) =>
        line.includes("database system is ready to accept connections") ? true : undefined,
      readyOnStderr: true,
      timeoutMs,
      signal: options.signal,
      output: options.verbose ? "inherit" : "ignore",
    });

  let child: Child;
  let port = 0;
  try {
    if (owner) await chown(temp.path, owner.uid, owner.gid);
    await initdb(bin, dataDir, { cwd: temp.path, env, timeoutMs, signal: options.signal, ...spawnAs });
    const hba = join(dataDir, "pg_hba.conf");
    await writeFile(hba, HBA);
    if (owner) await chown(hba, owner.uid, owner.gid);
    // Another process can take a free port before the server binds it: then try a new one.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        child = await launchServer(port);
        break;
      } catch (err) {
        const lostRace = /Address already in use/.test(String((err as Error)?.message));
        if (!lostRace || attempt >= PORT_RETRIES) throw err;
      }
    }
  } catch (err) {
    await temp.remove();
    throw err;
  }

  let starting: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  const handle: PostgresHandle = {
    host: "127.0.0.1",
    port,
    user: USER,
    database: DATABASE,
    connectionString: `postgresql://${USER}@127.0.0.1:${port}/${DATABASE}`,
    dataDir,
    get child() {
      return child;
    },
    pgConfig: () => ({ host: "127.0.0.1", port, user: USER, database: DATABASE }),
    crash: () => child.stop(STOP_GRACE_MS, "SIGQUIT"),
    start() {
      if (stopped) return Promise.reject(new LaunchError("postgres was stopped; its data directory is gone"));
      if (child.running) return Promise.resolve();
      starting ??= launchServer(port).then(
        (c) => {
          child = c;
          starting = undefined;
        },
        (err: unknown) => {
          starting = undefined;
          throw err;
        },
      );
      return starting;
    },
    stop() {
      stopped ??= (async () => {
        await starting?.catch(() => {});
        await child.stop(STOP_GRACE_MS, "SIGINT");
        await temp.remove();
      })();
      return stopped;
    },
    [Symbol.asyncDispose]: () => handle.stop(),
  };
  return handle;
}

function checkSettings(settings: Record<string, string | number | boolean>): string[] {
  return Object.entries(settings).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name))
      throw new TypeError(`invalid PostgreSQL setting name "${name}"`);
    if (RESERVED.has(name.toLowerCase())) {
      throw new TypeError(`the PostgreSQL setting "${name}" is the launcher's own and cannot be changed`);
    }
    if (typeof value === "boolean") return `${name}=${value ? "on" : "off"}`;
    if (
      typeof value === "number" ? !Number.isFinite(value) : typeof value !== "string" || value.includes("\0")
    ) {
      throw new TypeError(`invalid value for the PostgreSQL setting "${name}": ${String(value)}`);
    }
    return `${name}=${value}`;
  });
}

const NOT_INSTALLED = "PostgreSQL is not installed (Debian: apt-get install postgresql)";

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The directory holding `initdb` and `postgres`: that of `initdb` on PATH (through its symlinks, since
 * `postgres` may not be on PATH with it), else the highest `/usr/lib/postgresql/<version>/bin`.
 */
async function findBinaries(): Promise<string> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && (await executable(join(dir, "initdb"))))
      return dirname(await realpath(join(dir, "initdb")));
  }
  const root = "/usr/lib/postgresql";
  const versions = (await readdir(root).catch(() => [] as string[]))
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    if (await executable(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
  }
  throw new LaunchError(NOT_INSTALLED);
}

/**
 * The `postgres` system user's ids when this process is root (PostgreSQL refuses root); else none.
 * Read from /etc/passwd, where Debian's package adds it, so no PATH lookup is involved.
 */
async function serverOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  const entry = passwd.split("\n").find((line) => line.startsWith("postgres:"));
  const [, , uid, gid] = (entry ?? "").split(":").map((field) => Number(field));
  if (Number.isInteger(uid) && Number.isInteger(gid) && (uid as number) > 0) {
    return { uid: uid as number, gid: gid as number };
  }
  throw new LaunchError(
    "PostgreSQL refuses to run as root and there is no `postgres` system user to run it as " +
      "(Debian's postgresql package creates one), or run the tests as another user",
  );
}

/** Runs `initdb`: superuser `fencelock`, trust authentication, C locale, no flushes (a throwaway). */
async function initdb(
  bin: string,
  dataDir: string,
  o: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    timeoutMs: number;
    signal?: AbortSignal;
    uid?: number;
    gid?: number;
  },
): Promise<void> {
  const args = ["-D", dataDir, "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"];
  try {
    await run(join(bin, "initdb"), args, {
      cwd: o.cwd,
      env: o.env,
      timeout: o.timeoutMs,
      killSignal: "SIGKILL",
      signal: o.signal,
      uid: o.uid,
      gid: o.gid,
    });
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; killed?: boolean };
    if (e.code === "ENOENT") throw new LaunchError(NOT_INSTALLED, { cause: err });
    const why = o.signal?.aborted ? "aborted" : e.killed ? `timed out after ${o.timeoutMs} ms` : "failed";
    throw new LaunchError(`initdb ${why}\n${(e.stderr ?? "").trim().split("\n").slice(-20).join("\n")}`, {
      cause: err,
    });
  }
}
