/**
 * The generic launcher: starts a program as a real child process, waits until it says it is ready
 * (raced against it exiting early and against a timeout), and always stops it by its PID.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { FencelockError } from "../shared/errors.js";

/** A launched child did not become ready: it exited, timed out, or the wait was aborted. */
export class LaunchError extends FencelockError<"LAUNCH_FAILED"> {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LAUNCH_FAILED", message, options);
  }
}

/** Children started by this process and not yet stopped; killed if this process exits first. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  live.add(child);
  // A child that could not be spawned (ENOENT) emits 'error' and 'close', never 'exit'.
  child.once("exit", () => live.delete(child));
  child.once("close", () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const c of live) {
      // A process that is stopped (SIGSTOP) would never see a SIGTERM; SIGKILL works either way.
      if (c.pid !== undefined) killQuietly(c.pid, "SIGKILL");
    }
  });
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** What a launch needs. */
export interface LaunchOptions<T> {
  /** A short name for messages, e.g. `storage` or `etcd-1`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Called with every line of the child's standard output (and standard error if `readyOnStderr`);
   * returns a value when the line says the child is ready, `undefined` otherwise.
   */
  readyLine?: (line: string) => T | undefined;
  /** Polled every 100 ms instead of, or as well as, `readyLine`; resolves to a value once ready. */
  probe?: () => Promise<T | undefined>;
  readyOnStderr?: boolean;
  /** How long to wait for readiness; default 20 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Where the child's output goes besides the ready check: `ignore` (default) or this process's stderr. */
  output?: "ignore" | "inherit";
  /**
   * Start the child in its own process group and let it outlive this process (it is not killed when
   * this process exits, and its output is not read after readiness). For `fencelock cluster up`.
   */
  detached?: boolean;
  /**
   * Run the child as this user and group ID (this process must be root to switch). Its PID is still
   * the program's own, so it can be signalled directly. PostgreSQL needs this: it refuses to run as root.
   */
  uid?: number;
  gid?: number;
}

/** A running child process started by `launch`. */
export class Child<T = unknown> {
  /** Lines the child printed (stdout and stderr), the last 200, for failure messages. */
  readonly recent: string[] = [];
  /**
   * Resolves with the exit code (or signal name) when the child exits, or with the error's code (e.g.
   * `ENOENT`) when it could not be started at all.
   */
  readonly exited: Promise<number | string>;
  ready!: T;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      if (process.exitCode !== null || process.signalCode !== null) {
        resolve(process.exitCode ?? process.signalCode ?? -1);
        return;
      }
      process.once("exit", (code, sig) => resolve(code ?? sig ?? -1));
      // Node never emits 'exit' for a child that failed to spawn (a missing binary): only 'error',
      // then 'close'. Without this, everything that waits for such a child would wait forever.
      process.once("error", (err: NodeJS.ErrnoException) => {
        if (process.pid === undefined) resolve(err.code ?? -1);
      });
    });
  }

  /** The child's PID. */
  get pid(): number {
    if (this.process.pid === undefined) throw new LaunchError(`${this.name} has no pid`);
    return this.process.pid;
  }

  /** True until the child has exited. */
  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Sends `signal` to the child by its PID; does nothing once it has exited. */
  signal(signal: NodeJS.Signals): void {
    if (this.running && this.process.pid !== undefined) killQuietly(this.process.pid, signal);
  }

  /** Freezes the child (SIGSTOP). */
  pause(): void {
    this.signal("SIGSTOP");
  }

  /** Thaws the child (SIGCONT). */
  resume(): void {
    this.signal("SIGCONT");
  }

  /** SIGKILL, then waits for the exit. Safe to call more than once. */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }

  /**
   * Asks the child to stop (SIGCONT then `signal`, default SIGTERM, so a frozen child can act on it),
   * and SIGKILLs it after `graceMs` (default 5 s). Resolves when it has exited. Safe to call more than
   * once.
   */
  async stop(graceMs = 5000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.running) return;
    this.signal("SIGCONT");
    this.signal(signal);
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The recent output, for an error message. */
  tail(lines = 20): string {
    return this.recent.slice(-lines).join("\n");
  }
}

/**
 * Starts `command` and resolves once it is ready. Rejects with `LaunchError` (the child killed) if it
 * exits first, if `timeoutMs` passes, or if `signal` aborts. Every call starts a new child.
 */
export async function launch<T>(options: LaunchOptions<T>): Promise<Child<T>> {
  const { name, timeoutMs = 20_000, signal } = options;
  signal?.throwIfAborted();
  const proc = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
    uid: options.uid,
    gid: options.gid,
  });
  if (!options.detached) trackChild(proc);
  const child = new Child<T>(name, proc);
  const spawnError = new Promise<never>((_, reject) => {
    proc.once("error", (err) =>
      reject(new LaunchError(`${name}: could not start ${options.command}`, { cause: err })),
    );
  });

  let resolveReady: (value: T) => void = () => {};
  const readyFromLine = new Promise<T>((resolve) => {
    resolveReady = resolve;
  });
  const onLine = (line: string, stream: "out" | "err") => {
    child.recent.push(line);
    if (child.recent.length > 200) child.recent.shift();
    if (options.output === "inherit") process.stderr.write(`[${name}] ${line}\n`);
    if (options.readyLine && (stream === "out" || options.readyOnStderr)) {
      const value = options.readyLine(line);
      if (value !== undefined) resolveReady(value);
    }
  };
  if (proc.stdout) createInterface({ input: proc.stdout }).on("line", (l) => onLine(l, "out"));
  if (proc.stderr) createInterface({ input: proc.stderr }).on("line", (l) => onLine(l, "err"));

  let stopProbing = false;
  const readyFromProbe = new Promise<T>((resolve) => {
    if (!options.probe) return;
    const probe = options.probe;
    const tick = async () => {
      while (!stopProbing) {
        try {
          const value = await probe();
          if (value !== undefined) {
            resolve(value);
            return;
          }
        } catch {
          // Not ready yet.
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    void tick();
  });

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LaunchError(`${name} was not ready after ${timeoutMs} ms\n${child.tail()}`)),
      timeoutMs,
    );
    onAbort = () => reject(new LaunchError(`${name}: launch aborted`, { cause: signal?.reason }));
    signal?.addEventListener("abort", onAbort, { once: true });
    void child.exited.then((code) =>
      reject(new LaunchError(`${name} exited (${code}) before it was ready\n${child.tail()}`)),
    );
  });

  try {
    const waits: Promise<T>[] = [failure, spawnError];
    if (options.readyLine) waits.push(readyFromLine);
    if (options.probe) waits.push(readyFromProbe);
    child.ready = await Promise.race(waits);
    if (options.detached) {
      proc.stdout?.destroy();
      proc.stderr?.destroy();
      proc.unref();
    }
    return child;
  } catch (err) {
    await child.kill();
    throw err;
  } finally {
    stopProbing = true;
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Parses the ready line every fencelock server prints on standard output:
 * `{"event":"listening","host":"127.0.0.1","port":8080,...}`. Returns host and port, or `undefined`.
 */
export function listeningLine(line: string): { host: string; port: number } | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const obj = JSON.parse(line) as { event?: unknown; host?: unknown; port?: unknown };
    if (obj.event === "listening" && typeof obj.host === "string" && typeof obj.port === "number") {
      return { host: obj.host, port: obj.port };
    }
  } catch {
    // Not a JSON line.
  }
  return undefined;
}

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer `--port 0` and the ready line
 * where the program supports it; this is for programs that need their ports chosen up front (etcd).
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A temporary directory and its removal. */
export interface TempDir {
  path: string;
  /** Removes the directory and everything in it. Safe to call more than once. */
  remove(): Promise<void>;
}

/** Creates a fresh directory under the system's temp dir, named after `prefix`. */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `fencelock-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The path of fencelock's CLI entry point in the build, for launching its subcommands. */
export const CLI_PATH = new URL("../cli/main.js", import.meta.url).pathname;
