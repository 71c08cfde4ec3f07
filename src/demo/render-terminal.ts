/**
 * Draws a timeline in the terminal: one row per lane, time running left to right, spans as runs of a
 * character and moments as symbols, then a legend and the verdict. Pure: returns the text.
 */
import type { Actor } from "./events.js";
import type { Timeline } from "./timeline.js";

/** Options of `renderTerminal`. */
export interface TerminalOptions {
  /** Columns for the time axis, default 60. */
  width?: number;
  /** Colour with ANSI escapes, default false. */
  color?: boolean;
}

type Paint = "lease" | "stale" | "pause" | "waiting" | "good" | "bad" | "plain";

const SPAN_CHARS = { lease: "━", stale: "┄", pause: "░", waiting: "·" } as const;
const LABEL_WIDTH = 14;
const ANSI: Record<Paint, string> = {
  lease: "\x1b[34m",
  stale: "\x1b[35m",
  pause: "\x1b[33m",
  waiting: "\x1b[2m",
  good: "\x1b[32m",
  bad: "\x1b[31m",
  plain: "",
};

interface Cell {
  ch: string;
  paint: Paint;
  mark: boolean;
}

/** Renders one scenario's timeline as lines of text. */
export function renderTerminal(timeline: Timeline, options: TerminalOptions = {}): string {
  const width = Math.max(20, options.width ?? 60);
  const color = options.color ?? false;
  const col = (ms: number) =>
    Math.min(width - 1, Math.max(0, Math.round((ms / timeline.durationMs) * (width - 1))));
  const rows = new Map<Actor, Cell[]>();
  for (const lane of timeline.lanes) {
    rows.set(
      lane,
      Array.from({ length: width }, () => ({ ch: " ", paint: "plain" as Paint, mark: false })),
    );
  }
  const row = (lane: Actor) => rows.get(lane) ?? [];

  // Spans first, pauses last so they cover the lease they interrupt.
  const order = { waiting: 0, lease: 1, stale: 2, pause: 3 } as const;
  for (const span of [...timeline.spans].sort((a, b) => order[a.kind] - order[b.kind])) {
    const cells = row(span.lane);
    for (let c = col(span.fromMs); c <= col(span.toMs); c++) {
      const cell = cells[c];
      if (cell && !cell.mark) Object.assign(cell, { ch: SPAN_CHARS[span.kind], paint: span.kind });
    }
  }
  const put = (lane: Actor, ms: number, ch: string, paint: Paint) => {
    const cells = row(lane);
    // Moments closer than a column apart go side by side, the later one to the right.
    let c = col(ms);
    while (c < width - 1 && cells[c]?.mark) c++;
    const cell = cells[c];
    if (cell) Object.assign(cell, { ch, paint, mark: true });
  };
  const moments = [
    ...timeline.arrows.map((a) => ({ at: a.fromMs, draw: () => drawArrow(a) })),
    ...timeline.marks.map((m) => ({ at: m.atMs, draw: () => drawMark(m) })),
  ].sort((a, b) => a.at - b.at);
  function drawArrow(a: Timeline["arrows"][number]): void {
    if (a.kind === "grant") put(a.to, a.toMs, "●", "lease");
    else put(a.from, a.fromMs, "W", a.accepted ? "good" : "bad");
  }
  function drawMark(m: Timeline["marks"][number]): void {
    const symbol = {
      granted: ["●", "lease"],
      queued: ["◌", "waiting"],
      expired: ["✕", "bad"],
      released: ["○", "plain"],
      accepted: ["✓", "good"],
      refused: ["✗", "bad"],
      error: ["!", "bad"],
    } as const;
    const [ch, paint] = symbol[m.kind];
    put(m.lane, m.atMs, ch, paint);
  }
  for (const m of moments) m.draw();

  const paint = (text: string, p: Paint) => (color && p !== "plain" ? `${ANSI[p]}${text}\x1b[0m` : text);
  const lines: string[] = [];
  lines.push(paint(timeline.title, "plain"));
  lines.push(timeline.setup);
  lines.push("");
  const stepS = timeline.durationMs > 12_000 ? 2 : 1;
  const axis = Array.from({ length: width }, () => " ");
  for (let s = 0; s * 1000 <= timeline.durationMs; s += stepS) {
    const label = `${s}s`;
    const c = col(s * 1000);
    if (c + label.length <= width) for (let i = 0; i < label.length; i++) axis[c + i] = label[i] as string;
  }
  lines.push(`${"".padEnd(LABEL_WIDTH)}${axis.join("").trimEnd()}`);
  // The same origin as the live lines and the HTML page's axis.
  lines.push(`${"".padEnd(LABEL_WIDTH)}s since scenario start (as +N.NNN s above)`);
  for (const lane of timeline.lanes) {
    const text = row(lane)
      .map((cell) => paint(cell.ch, cell.paint))
      .join("");
    lines.push(`${lane.padEnd(LABEL_WIDTH)}${text}`.trimEnd());
  }
  lines.push("");
  lines.push(
    `${"".padEnd(LABEL_WIDTH)}━ holds the lock  ┄ lease expired, still believes it holds it  ░ paused  · waits`,
  );
  lines.push(
    `${"".padEnd(LABEL_WIDTH)}● lock granted  ◌ queued  ✕ lease expired  ○ released  W write sent  ✓ accepted  ✗ refused`,
  );
  lines.push("");
  lines.push(paint(timeline.verdict.text, timeline.verdict.correct ? "good" : "bad"));
  return lines.join("\n");
}
