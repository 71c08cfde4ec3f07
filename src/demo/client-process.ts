/**
 * A seed client running as a real child process (`fencelock client N --json-events`), whose own
 * reports arrive as events. The demo freezes it with SIGSTOP, thaws it with SIGCONT, or presses its
 * key through its standard input.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { CLI_PATH } from "../testkit/index.js";
import { ScenarioError } from "./errors.js";
import { type DemoEvent, type EventKind, eventFromJson } from "./events.js";

/** Clients not yet exited; SIGKILLed if the demo exits first (a stopped one cannot act on SIGTERM). */
const running = new Set<ChildProcess>();
let hookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (hookInstalled) return;
  hookInstalled = true;
  process.once("exit", () => {
    for (const c of running) if (c.pid !== undefined) c.kill("SIGKILL");
  });
}

/** A running client. Create with `ClientProcess.start`. */
export class ClientProcess {
  /** Every event the client reported, in arrival order. */
  readonly events: DemoEvent[] = [];
  /** Resolves with the exit code (or the signal's name) when the process exits. */
  readonly exited: Promise<number | string>;
  private readonly other: string[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
    onEvent: (event: DemoEvent) => void,
  ) {
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code, sig) => {
        resolve(code ?? sig ?? -1);
        for (const wake of this.waiters) wake();
      });
    });
    if (proc.stdout) {
      createInterface({ input: proc.stdout }).on("line", (line) => {
        const event = eventFromJson(line);
        if (!event) {
          this.keep(line);
          return;
        }
        this.events.push(event);
        onEvent(event);
        for (const wake of this.waiters) wake();
      });
    }
    if (proc.stderr) createInterface({ input: proc.stderr }).on("line", (line) => this.keep(line));
  }

  /** Starts `fencelock client <args>` with JSON events; `onEvent` gets each event as it arrives. */
  static start(name: string, args: string[], onEvent: (event: DemoEvent) => void): ClientProcess {
    const proc = spawn(process.execPath, [CLI_PATH, "client", ...args, "--json-events"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    track(proc);
    // A write to the stdin of a process that just exited fails with EPIPE; the exit is what matters.
    proc.stdin?.on("error", () => {});
    return new ClientProcess(name, proc, onEvent);
  }

  /** The process ID. */
  get pid(): number {
    return this.proc.pid ?? -1;
  }

  private get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private keep(line: string): void {
    this.other.push(line);
    if (this.other.length > 50) this.other.shift();
  }

  /** The last events and the output lines that were not events (errors, warnings), for failure messages. */
  tail(): string {
    const last = this.events.slice(-3).map((e) => `  last report: ${e.kind}: ${e.what}`);
    return [...last, ...this.other].join("\n");
  }

  /**
   * Resolves with the first event of `kind` (already received or coming). Rejects with `ScenarioError`
   * if the process exits first or `timeoutMs` passes, or with the signal's reason on abort. Removes its
   * listeners either way.
   */
  waitFor(kind: EventKind, timeoutMs: number, signal?: AbortSignal): Promise<DemoEvent> {
    return this.until(
      () => this.events.find((e) => e.kind === kind),
      `${this.name} to report "${kind}"`,
      timeoutMs,
      signal,
    );
  }

  /** Resolves with the exit code; rejects like `waitFor` on timeout or abort (the process keeps running). */
  waitExit(timeoutMs: number, signal?: AbortSignal): Promise<number | string> {
    return this.until(
      () => this.proc.exitCode ?? this.proc.signalCode ?? undefined,
      `${this.name} to exit`,
      timeoutMs,
      signal,
      true,
    );
  }

  private until<T>(
    check: () => T | undefined,
    what: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    exitOk = false,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(poll);
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const poll = () => {
        const value = check();
        if (value !== undefined) done(() => resolve(value));
        else if (!this.alive && !exitOk) {
          done(() => reject(new ScenarioError(`${this.name} exited before ${what}\n${this.tail()}`)));
        }
      };
      const onAbort = () => done(() => reject(signal?.reason));
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      timer = setTimeout(
        () =>
          done(() =>
            reject(new ScenarioError(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.tail()}`)),
          ),
        timeoutMs,
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(poll);
      poll();
    });
  }

  /** Stops the process (SIGSTOP): nothing in it runs, keep-alives included. */
  freeze(): void {
    if (this.alive) this.proc.kill("SIGSTOP");
  }

  /** Continues a stopped process (SIGCONT). */
  thaw(): void {
    if (this.alive) this.proc.kill("SIGCONT");
  }

  /** Sends one key (a newline) to the process's standard input. */
  pressKey(): void {
    if (this.alive) this.proc.stdin?.write("\n");
  }

  /** SIGKILLs the process (after SIGCONT, harmless) and waits for it to exit. Safe to call twice. */
  async kill(): Promise<void> {
    if (this.alive) {
      this.proc.kill("SIGKILL");
    }
    await this.exited;
  }
}
