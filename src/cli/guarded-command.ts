/**
 * Running a shell command while something is held (`fencelock lock`, `fencelock elect`): the command gets
 * the token and key in its environment and the terminal as its own; if what is held is lost, the command
 * gets SIGTERM and, after a grace period, SIGKILL, because a command that outlives its lock is the very
 * hazard fencing exists for. The exit codes follow `timeout(1)` for what is fencelock's own.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { connect, DEFAULT_ENDPOINTS, LockTimeoutError, type Session } from "../client/index.js";
import { parseDuration } from "./flags.js";
import { interruptible, parseEndpoints } from "./run-scope.js";

/** Exit codes of `fencelock lock` and `fencelock elect` besides the command's own. */
export const EXIT = {
  /** The session (or leadership) was lost while the command ran; the command was stopped. */
  lost: 121,
  /** The lock or leadership was not obtained within `--timeout`. */
  timeout: 124,
  /** fencelock itself failed: bad flags, lock service unreachable. */
  failed: 125,
  /** The command was found but could not be run. */
  cannotRun: 126,
  /** The command was not found. */
  notFound: 127,
  /** fencelock was interrupted (SIGINT, SIGTERM) while it waited. */
  interrupted: 130,
} as const;

/** The help text's lines on exit codes, shared by both commands. */
export const EXIT_CODES_HELP = `exit codes:
  the command's own code (128+N if a signal N ended it), or
  ${EXIT.lost}  the session was lost while the command ran: it got SIGTERM, then SIGKILL after --grace
  ${EXIT.timeout}  not obtained within --timeout
  ${EXIT.failed}  fencelock failed (bad flags, lock service unreachable)
  ${EXIT.cannotRun}  the command could not be run
  ${EXIT.notFound}  the command was not found
  ${EXIT.interrupted}  interrupted (SIGINT, SIGTERM) before the command started`;

/** What the command runs under. */
export interface Held {
  token: bigint;
  key: string;
  /** Aborts when what is held is lost. */
  lost: AbortSignal;
  /** Aborts when fencelock itself is asked to stop (SIGINT, SIGTERM): the command gets SIGTERM too. */
  stop: AbortSignal;
}

/**
 * Runs `argv` with `FENCELOCK_TOKEN` and `FENCELOCK_KEY` set and resolves to fencelock's exit code once
 * the command has exited: its own code, `EXIT.lost` if `held.lost` aborted first (the command then got
 * SIGTERM, and SIGKILL after `graceMs`), `EXIT.notFound` or `EXIT.cannotRun` if it could not start. Never
 * rejects; removes its listeners and timer before it resolves.
 */
export function runHeld(argv: string[], held: Held, graceMs: number): Promise<number> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise<number>((resolve) => {
    const child = spawn(file, args, {
      stdio: "inherit",
      env: { ...process.env, FENCELOCK_TOKEN: held.token.toString(), FENCELOCK_KEY: held.key },
    });
    let lost = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stopChild = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      killTimer ??= setTimeout(() => child.kill("SIGKILL"), graceMs);
    };
    const onLost = () => {
      lost = true;
      console.error(`fencelock: ${reasonText(held.lost.reason)}; stopping the command`);
      stopChild();
    };
    const cleanup = () => {
      clearTimeout(killTimer);
      held.lost.removeEventListener("abort", onLost);
      held.stop.removeEventListener("abort", stopChild);
    };
    held.lost.addEventListener("abort", onLost, { once: true });
    held.stop.addEventListener("abort", stopChild, { once: true });
    if (held.lost.aborted) onLost();
    else if (held.stop.aborted) stopChild();
    child.once("error", (err: NodeJS.ErrnoException) => {
      cleanup();
      console.error(`fencelock: cannot run ${file}: ${err.message}`);
      resolve(err.code === "ENOENT" ? EXIT.notFound : EXIT.cannotRun);
    });
    child.once("exit", (code, signal) => {
      cleanup();
      if (lost) resolve(EXIT.lost);
      else if (signal) resolve(128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0));
      else resolve(code ?? EXIT.failed);
    });
  });
}

/** What is held while the command runs, as `obtain` returns it. */
export interface Obtained {
  token: bigint;
  key: string;
  /** Aborts when what is held is lost. */
  signal: AbortSignal;
  /** Gives it back (unlock, resign). */
  release(): Promise<void>;
}

/** How `holdAndRun` connects and waits. */
export interface HoldOptions {
  endpoints: string[];
  ttl: number;
  /** Bound on the wait in ms; no bound if left out. */
  timeoutMs: number | undefined;
  graceMs: number;
  command: string[];
}

/**
 * Connects, starts a session, waits for `obtain` (with fencelock's interrupt signal and the timeout), runs
 * the command while held, then releases and closes everything. Resolves to fencelock's exit code
 * (`EXIT`, or the command's own); never rejects.
 */
export async function holdAndRun(
  options: HoldOptions,
  obtain: (
    session: Session,
    wait: { signal: AbortSignal; timeoutMs: number | undefined },
  ) => Promise<Obtained>,
): Promise<number> {
  const client = connect({ endpoints: options.endpoints });
  try {
    return await interruptible(async ({ signal }) => {
      let held: Obtained;
      const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
      try {
        // The grant has the client's own call timeout: --timeout bounds the wait for the lock.
        const session = await client.session({ ttl: options.ttl, signal });
        const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
        held = await obtain(session, { signal, timeoutMs });
      } catch (err) {
        // A call cut short by the deadline is the same timeout, seen from inside the call.
        if (err instanceof LockTimeoutError || (deadline !== undefined && Date.now() >= deadline)) {
          console.error(`fencelock: not obtained within ${options.timeoutMs} ms`);
          return EXIT.timeout;
        }
        if (signal.aborted) return EXIT.interrupted;
        const code = (err as { code?: unknown }).code;
        console.error(`fencelock: ${reasonText(err)}${typeof code === "string" ? ` [${code}]` : ""}`);
        return EXIT.failed;
      }
      try {
        return await runHeld(
          options.command,
          { token: held.token, key: held.key, lost: held.signal, stop: signal },
          options.graceMs,
        );
      } finally {
        // After a loss the key is gone with the lease; a release then changes nothing.
        await held.release().catch(() => {});
      }
    });
  } finally {
    await client.close();
  }
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

/** Splits `flags… -- command args…`; `command` is empty when there is no `--` or nothing after it. */
export function splitCommand(argv: string[]): { flags: string[]; command: string[] } {
  const i = argv.indexOf("--");
  return i < 0 ? { flags: argv, command: [] } : { flags: argv.slice(0, i), command: argv.slice(i + 1) };
}

/** The flags both `lock` and `elect` take, checked; or the message for a bad one. */
export function commonFlags(values: {
  ttl?: string;
  timeout?: string;
  grace?: string;
  endpoints?: string;
}): { ttl: number; timeoutMs: number | undefined; graceMs: number; endpoints: string[] } | string {
  const ttl = Number(values.ttl ?? "10");
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) {
    return `--ttl must be whole seconds from 1 to 86400, got "${values.ttl}"`;
  }
  const timeoutMs = values.timeout === undefined ? undefined : parseDuration(values.timeout);
  if (values.timeout !== undefined && timeoutMs === undefined) {
    return `--timeout must be a duration like 30s or 500ms, got "${values.timeout}"`;
  }
  const graceMs = parseDuration(values.grace ?? "5s");
  if (graceMs === undefined) return `--grace must be a duration like 5s or 500ms, got "${values.grace}"`;
  const endpoints = parseEndpoints(values.endpoints ?? DEFAULT_ENDPOINTS.join(","));
  if (!endpoints) return `--endpoints must be host:port[,host:port...], got "${values.endpoints}"`;
  return { ttl, timeoutMs, graceMs, endpoints };
}
