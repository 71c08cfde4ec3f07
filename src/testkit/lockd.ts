/**
 * Launches lockd as a real child process (`fencelock lockd`) on a free loopback port, ready when it
 * prints its listening line; kill and restart it on the same port and data; always cleaned up.
 */
import { type Child, CLI_PATH, launch, listeningLine, type TempDir, tempDir } from "./process.js";

/** Options of `startLockd`. */
export interface LockdLaunchOptions {
  /** Keep the data in memory (a restart then starts empty). */
  memory?: boolean;
  /** Data directory; default a fresh temporary directory, removed by `stop`. */
  dataDir?: string;
  /** Port; default a free one chosen by lockd (kept across restarts). */
  port?: number;
  /** Aborts the start (and restarts). */
  signal?: AbortSignal;
  /** Print lockd's output on this process's standard error. */
  verbose?: boolean;
  /** Readiness timeout per start, default 20 s. */
  timeoutMs?: number;
  /** More `fencelock lockd` flags, e.g. `["--retention", "100"]`. */
  extraArgs?: string[];
}

/** A running lockd child. */
export interface LockdInstance {
  /** `127.0.0.1:PORT`. */
  endpoint: string;
  /** `[endpoint]`, the form the lock client takes. */
  endpoints: string[];
  port: number;
  /** The current process; replaced by `restart`. */
  child: Child;
  /** The data directory; `undefined` with `memory`. */
  dataDir: string | undefined;
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts lockd again on the same port and data (stopping it first if it still runs). */
  restart(): Promise<void>;
  /** Stops lockd (SIGTERM, then SIGKILL after a grace) and removes the data directory if it made it. */
  stop(): Promise<void>;
}

/**
 * Starts lockd and resolves once it listens. Rejects with `LaunchError` if it exits first, the timeout
 * passes or `signal` aborts; a temporary directory it made is removed before it rejects.
 */
export async function startLockd(options: LockdLaunchOptions = {}): Promise<LockdInstance> {
  const temp: TempDir | undefined = options.memory || options.dataDir ? undefined : await tempDir("lockd");
  const dataDir = options.memory ? undefined : (options.dataDir ?? (temp as TempDir).path);
  let port = options.port ?? 0;
  const start = async (): Promise<Child> => {
    const args = [CLI_PATH, "lockd", "--listen", `127.0.0.1:${port}`];
    args.push(...(dataDir ? ["--data", dataDir] : ["--memory"]), ...(options.extraArgs ?? []));
    const child = await launch({
      name: "lockd",
      command: process.execPath,
      args,
      readyLine: listeningLine,
      timeoutMs: options.timeoutMs ?? 20_000,
      signal: options.signal,
      output: options.verbose ? "inherit" : "ignore",
    });
    port = (child.ready as { port: number }).port;
    return child;
  };
  let child: Child;
  try {
    child = await start();
  } catch (err) {
    await temp?.remove();
    throw err;
  }
  const instance: LockdInstance = {
    endpoint: `127.0.0.1:${port}`,
    endpoints: [`127.0.0.1:${port}`],
    port,
    child,
    dataDir,
    async kill() {
      await instance.child.kill();
    },
    async restart() {
      await instance.child.stop();
      instance.child = await start();
    },
    async stop() {
      await instance.child.stop();
      await temp?.remove();
    },
  };
  return instance;
}
