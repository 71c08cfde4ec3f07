/**
 * Launches the fenced storage server (`fencelock storage`) as a real child process on a free loopback
 * port, with its data in a temporary directory; ready when it prints its listening line.
 */
import { type Child, CLI_PATH, launch, listeningLine, type TempDir, tempDir } from "./process.js";

/** Options of `startStorage`. */
export interface StorageOptions {
  /** A throwaway in-memory store (lost on kill or restart). */
  memory?: boolean;
  /** Database directory; default a fresh temporary directory, removed by `stop`. */
  dataDir?: string;
  /** Start with `--allow-unfenced`. */
  allowUnfenced?: boolean;
  /** The bearer token the server requires (passed in `FENCELOCK_STORAGE_TOKEN`, not on the command line). */
  authToken?: string;
  /** Port to bind; default a free one. */
  port?: number;
  /** SQLite synchronous mode, `normal` (default) or `full`. */
  synchronous?: "normal" | "full";
  /** Aborts the start (and later restarts): the child is killed and the start rejects with `LaunchError`. */
  signal?: AbortSignal;
  /** Readiness timeout per start; default 20 s. */
  timeoutMs?: number;
  /** Print the server's output on this process's stderr. */
  verbose?: boolean;
}

/** A running storage server. */
export interface StorageHandle {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The current process (a new one after `restart`). */
  readonly child: Child;
  /** The database directory; `undefined` with `memory`. */
  readonly dataDir: string | undefined;
  /** SIGKILLs the server and waits for it to exit. Safe to call twice. */
  kill(): Promise<void>;
  /**
   * Starts the server again on the same port and data: after `kill`, or while running (then it is first
   * stopped with SIGTERM). Rejects with `LaunchError` if the new process does not become ready.
   */
  restart(): Promise<void>;
  /** Stops the server (SIGTERM, SIGKILL after 5 s) and removes its temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a storage server and resolves once it is listening. Rejects with `LaunchError` if it exits
 * first, the timeout passes or `signal` aborts; its temporary directory is removed before it rejects.
 * Every call starts a new server.
 */
export async function startStorage(options: StorageOptions = {}): Promise<StorageHandle> {
  const temp: TempDir | undefined =
    options.memory || options.dataDir !== undefined ? undefined : await tempDir("storage");
  const dataDir = options.memory ? undefined : (options.dataDir ?? temp?.path);

  const start = async (port: number): Promise<Child<{ host: string; port: number }>> => {
    const args = [CLI_PATH, "storage", "--listen", `127.0.0.1:${port}`];
    if (dataDir === undefined) args.push("--memory");
    else args.push("--data", dataDir);
    if (options.allowUnfenced) args.push("--allow-unfenced");
    if (options.synchronous) args.push("--sync", options.synchronous);
    return launch({
      name: "storage",
      command: process.execPath,
      args,
      env: tokenEnv(options.authToken),
      readyLine: listeningLine,
      timeoutMs: options.timeoutMs ?? 20_000,
      signal: options.signal,
      output: options.verbose ? "inherit" : "ignore",
    });
  };

  let child: Child<{ host: string; port: number }>;
  try {
    child = await start(options.port ?? 0);
  } catch (err) {
    await temp?.remove();
    throw err;
  }
  const port = child.ready.port;
  let stopped: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get child() {
      return child;
    },
    dataDir,
    kill: () => child.kill(),
    async restart() {
      if (child.running) await child.stop();
      child = await start(port);
    },
    stop() {
      stopped ??= (async () => {
        await child.stop();
        await temp?.remove();
      })();
      return stopped;
    },
  };
}

/**
 * This process's environment with `FENCELOCK_STORAGE_TOKEN` set to `token`, or removed without one (so
 * a token of the caller's shell never reaches a server meant to run without auth). The token goes in the
 * environment because other local users can read a command line in /proc, not an environment.
 */
function tokenEnv(token: string | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.FENCELOCK_STORAGE_TOKEN;
  if (token !== undefined) env.FENCELOCK_STORAGE_TOKEN = token;
  return env;
}
