/**
 * The progress display: a bar redrawn in place on a terminal, a plain line every few seconds otherwise
 * (logs and CI keep readable output).
 */
import type { TortureProgress } from "./run.js";

/** A progress display bound to a stream. */
export interface ProgressDisplay {
  update(p: TortureProgress): void;
  /** Ends the display (a newline after the bar). Safe to call twice. */
  done(): void;
}

/** Renders one progress line. `width` is the bar's width in characters. */
export function progressLine(p: TortureProgress, width = 30): string {
  const frac = p.durationMs > 0 ? Math.min(1, p.elapsedMs / p.durationMs) : 1;
  const filled = Math.round(frac * width);
  const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
  const secs = `${(p.elapsedMs / 1000).toFixed(0)}/${(p.durationMs / 1000).toFixed(0)} s`;
  return `[${bar}] ${secs}  ops ${p.ops}  faults ${p.faults}${p.current ? `  (${p.current})` : ""}`;
}

/** Creates the display for `stream`: in place on a TTY, a line every `everyMs` otherwise. */
export function createProgress(stream: NodeJS.WriteStream, everyMs = 5000): ProgressDisplay {
  let lastPlain = 0;
  let drawn = false;
  return {
    update(p) {
      if (stream.isTTY) {
        const line = progressLine(p).slice(0, Math.max(20, (stream.columns || 80) - 1));
        stream.write(`\r${line}\x1b[K`);
        drawn = true;
      } else if (Date.now() - lastPlain >= everyMs) {
        lastPlain = Date.now();
        stream.write(`${progressLine(p)}\n`);
      }
    },
    done() {
      if (drawn) stream.write("\n");
      drawn = false;
    },
  };
}
