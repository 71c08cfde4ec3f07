/**
 * The errors of the demo and of the seed's client. Each has a stable `code`.
 */
import { FencelockError } from "../shared/errors.js";

/** A `--pause` (or `--garbage`) value that does not name a pause mode. */
export class BadPauseError extends FencelockError<"BAD_PAUSE_MODE"> {
  constructor(readonly input: string) {
    super(
      "BAD_PAUSE_MODE",
      `bad pause "${input}": use none, keypress, sigstop, gc (with --garbage N) or a duration like 3s or 500ms`,
    );
  }
}

/** A `sigstop` pause waited longer than its timeout without being stopped and continued. */
export class PauseTimeoutError extends FencelockError<"PAUSE_TIMEOUT"> {
  constructor(readonly timeoutMs: number) {
    super("PAUSE_TIMEOUT", `not stopped and continued (SIGSTOP/SIGCONT) within ${timeoutMs} ms`);
  }
}

/** A scenario could not run to its end: a process failed, or a step did not happen in time. */
export class ScenarioError extends FencelockError<"DEMO_SCENARIO_FAILED"> {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DEMO_SCENARIO_FAILED", message, options);
  }
}

/** Every `code` a demo error can carry. */
export type DemoErrorCode = "BAD_PAUSE_MODE" | "PAUSE_TIMEOUT" | "DEMO_SCENARIO_FAILED";
