/**
 * What long-running subcommands share: an abort signal for Ctrl-C, SIGTERM and a closed standard output,
 * and the parsing of `--endpoints`.
 */

/** The scope one command run gets from `interruptible`. */
export interface RunScope {
  /** Aborts on SIGINT, on SIGTERM, or when standard output is closed (`fencelock … | head`). */
  signal: AbortSignal;
  /** True once standard output is closed: print nothing more. */
  readerGone(): boolean;
  /** The signal that interrupted the run, if one did. */
  interruptedBy(): "SIGINT" | "SIGTERM" | undefined;
}

/** The exit code of a command a signal interrupted: 128 + the signal's number, as shells report it. */
export function interruptedExitCode(signal: "SIGINT" | "SIGTERM"): number {
  return signal === "SIGINT" ? 130 : 143;
}

/**
 * Runs `fn` with a scope whose signal aborts on SIGINT, SIGTERM or a closed standard output, so the run
 * ends cleanly (locks released, children stopped) instead of dying. The listeners are removed when `fn`
 * settles, whatever the outcome; each call installs its own.
 */
export async function interruptible<T>(fn: (scope: RunScope) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let interrupted: "SIGINT" | "SIGTERM" | undefined;
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    interrupted ??= signal;
    controller.abort(new Error("interrupted"));
  };
  let gone = false;
  const onStdoutError = () => {
    gone = true;
    controller.abort(new Error("standard output closed"));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.stdout.on("error", onStdoutError);
  try {
    return await fn({ signal: controller.signal, readerGone: () => gone, interruptedBy: () => interrupted });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.stdout.off("error", onStdoutError);
  }
}

/** Parses `host:port[,host:port…]`; `undefined` when the list is empty or an entry is malformed. */
export function parseEndpoints(text: string): string[] | undefined {
  const endpoints = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (endpoints.length === 0 || endpoints.some((e) => !/^[^\s:/]+:\d{1,5}$/.test(e))) return undefined;
  return endpoints;
}
