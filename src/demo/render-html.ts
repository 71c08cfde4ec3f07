/**
 * Draws the timelines as one self-contained HTML page (inline SVG and CSS, nothing fetched), in the
 * manner of the two figures of Kleppmann's "How to do distributed locking": a horizontal lane per
 * client, the lock service and the storage; the lock handed out, the pause, the expiry, each write
 * with its token and the storage's answer. Pure: returns the page's text.
 */
import { type DemoEvent, tokenText } from "./events.js";
import type { Arrow, Mark, Span, Timeline } from "./timeline.js";

/** One scenario to draw: its timeline and its events (listed under the figure). */
export interface HtmlScenario {
  timeline: Timeline;
  /** Events with times relative to the scenario's start. */
  events: readonly DemoEvent[];
}

const WIDTH = 1100;
const LEFT = 130;
const RIGHT = 250;
const TOP = 58;
const LANE_GAP = 90;
const FONT = 12;

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

const COLORS = {
  lease: "#2563eb",
  stale: "#c026d3",
  pause: "#b45309",
  waiting: "#6b7280",
  good: "#15803d",
  bad: "#dc2626",
  lane: "#9ca3af",
  text: "#111827",
  muted: "#4b5563",
};

/** A rectangle on the figure, in its own units. */
interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** Width of a label at FONT, erring wide (DejaVu Sans averages about 0.6 em per glyph). */
function textWidth(text: string): number {
  return text.length * FONT * 0.62 + 4;
}

/**
 * Places labels so that none covers another label, an arrow, a mark or a lane's name: every drawn
 * thing is a box, and a label takes the first free spot, nearest its lane first, beside its point
 * then slid sideways away from it.
 */
class LabelPlacer {
  private readonly taken: Box[] = [];
  /**
   * Baselines relative to the lane, clear of the 26 px pause band and inside the lane's own half of
   * the gap, so a label is read as its lane's; only the last lane has room for a second row below.
   */
  private static readonly ABOVE = [-17, -32];
  private static readonly BELOW = [29];
  private static readonly LAST = [29, 44];
  /** Only when nothing nearer is free: further out, where a label may be nearer the next lane. */
  private static readonly FAR = [-47, 44];

  constructor(
    private readonly minX: number,
    private readonly maxX: number,
  ) {}

  block(box: Box): void {
    this.taken.push(box);
  }

  place(
    laneY: number,
    x: number,
    gap: number,
    text: string,
    last: boolean,
    reach = false,
  ): { x: number; y: number; anchor: "start" | "end" } {
    const w = textWidth(text);
    const near = last
      ? [...LabelPlacer.LAST, ...LabelPlacer.ABOVE]
      : [...LabelPlacer.ABOVE, ...LabelPlacer.BELOW];
    const far = LabelPlacer.FAR.filter((dy) => !near.includes(dy));
    let first: { x: number; y: number; anchor: "start" | "end" } | undefined;
    for (const [levels, shift] of [near, far].flatMap((l) => shifts.map((s) => [l, s] as const))) {
      for (const dy of levels) {
        for (const anchor of ["start", "end"] as const) {
          const tx = anchor === "start" ? x + gap + shift : x - gap - shift;
          const box = {
            x1: anchor === "start" ? tx : tx - w,
            x2: anchor === "start" ? tx + w : tx,
            y1: laneY + dy - FONT - 1,
            y2: laneY + dy + 4,
          };
          if (box.x1 < this.minX || box.x2 > this.maxX) continue;
          const spot = { x: tx, y: laneY + dy, anchor };
          first ??= spot;
          // A little air on either side, so neighbours do not read as one label.
          const padded = { ...box, x1: box.x1 - 4, x2: box.x2 + 4 };
          // A mark's label must not pass above or below another mark, nor sit beyond one, or it
          // reads as that one's: it keeps clear the whole way from its point.
          const path = {
            x1: anchor === "start" ? x + gap - 1 : box.x1,
            x2: anchor === "start" ? box.x2 : x - gap + 1,
            y1: Math.min(box.y1, laneY),
            y2: Math.max(box.y2, laneY),
          };
          if (this.taken.every((b) => !overlaps(b, padded) && !(reach && overlaps(b, path)))) {
            this.taken.push(box);
            return spot;
          }
        }
      }
    }
    return first ?? { x: x + gap, y: laneY + (near[0] as number), anchor: "start" };
  }
}

/** How far a label may slide from its point, nearest first. */
const shifts = Array.from({ length: Math.floor(WIDTH / 12) + 1 }, (_, i) => i * 12);

function overlaps(a: Box, b: Box): boolean {
  return a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
}

function figure(t: Timeline): string {
  const laneY = new Map(t.lanes.map((lane, i) => [lane, TOP + i * LANE_GAP]));
  const y = (lane: string) => laneY.get(lane as never) ?? TOP;
  const plot = WIDTH - LEFT - RIGHT;
  const x = (ms: number) => LEFT + (Math.max(0, ms) / t.durationMs) * plot;
  const axisY = TOP + (t.lanes.length - 1) * LANE_GAP + 60;
  const height = axisY + 34;
  const placer = new LabelPlacer(4, WIDTH - 4);
  const out: string[] = [];
  const label = (
    lane: string,
    atX: number,
    gap: number,
    text: string,
    cls: string,
    color: string,
    reach = false,
  ) => {
    if (text === "") return;
    const p = placer.place(y(lane), atX, gap, text, lane === "storage", reach);
    out.push(
      `<text class="label ${cls}" x="${p.x.toFixed(1)}" y="${p.y.toFixed(1)}" ` +
        `text-anchor="${p.anchor}" fill="${color}">${escapeXml(text)}</text>`,
    );
  };
  // Everything labels must keep clear of, before any label is placed.
  for (const lane of t.lanes) {
    const w = capitalise(lane).length * 14 * 0.66;
    placer.block({ x1: LEFT - 16 - w, x2: LEFT - 16, y1: y(lane) - 12, y2: y(lane) + 6 });
  }
  for (const a of t.arrows) {
    const [x1, x2, y1, y2] = [x(a.fromMs), x(a.toMs), y(a.from), y(a.to)];
    placer.block({
      x1: Math.min(x1, x2) - 3,
      x2: Math.max(x1, x2) + 3,
      y1: Math.min(y1, y2),
      y2: Math.max(y1, y2),
    });
    // The head, 14 px wide at the far end.
    const dir = y2 > y1 ? 1 : -1;
    placer.block({
      x1: x2 - 8,
      x2: x2 + 8,
      y1: Math.min(y2, y2 - dir * 24),
      y2: Math.max(y2, y2 - dir * 24),
    });
  }
  for (const m of t.marks) {
    placer.block({ x1: x(m.atMs) - 10, x2: x(m.atMs) + 10, y1: y(m.lane) - 10, y2: y(m.lane) + 10 });
  }

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" data-scenario="${t.scenario}" ` +
      `viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" ` +
      `aria-label="${escapeXml(t.title)}">`,
  );
  out.push(
    "<defs>" +
      `<pattern id="hatch-${t.scenario}" width="6" height="6" patternUnits="userSpaceOnUse" ` +
      `patternTransform="rotate(45)"><rect width="6" height="6" fill="#fef3c7"/>` +
      `<line x1="0" y1="0" x2="0" y2="6" stroke="${COLORS.pause}" stroke-width="2"/></pattern>` +
      ["lease", "good", "bad"]
        .map(
          (c) =>
            `<marker id="arrow-${c}-${t.scenario}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" ` +
            `markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" ` +
            `fill="${COLORS[c as "lease" | "good" | "bad"]}"/></marker>`,
        )
        .join("") +
      "</defs>",
  );

  // Time axis.
  out.push(
    `<line class="axis" x1="${LEFT}" y1="${axisY}" x2="${WIDTH - RIGHT}" y2="${axisY}" stroke="${COLORS.lane}"/>`,
  );
  const stepS = t.durationMs > 12_000 ? 2 : 1;
  for (let s = 0; s * 1000 <= t.durationMs; s += stepS) {
    const tx = x(s * 1000);
    out.push(
      `<line x1="${tx.toFixed(1)}" y1="${axisY}" x2="${tx.toFixed(1)}" y2="${axisY + 5}" stroke="${COLORS.lane}"/>` +
        `<line class="grid" x1="${tx.toFixed(1)}" y1="${TOP - 30}" x2="${tx.toFixed(1)}" y2="${axisY}" ` +
        `stroke="#f3f4f6"/>` +
        `<text x="${tx.toFixed(1)}" y="${axisY + 18}" text-anchor="middle" fill="${COLORS.muted}">${s} s</text>`,
    );
  }
  out.push(
    `<text x="${WIDTH - RIGHT}" y="${axisY + 32}" text-anchor="end" fill="${COLORS.muted}" ` +
      `font-size="11">seconds since the scenario started (the terminal's +N.NNN s)</text>`,
  );

  // Lanes.
  for (const lane of t.lanes) {
    out.push(
      `<g class="lane" data-lane="${escapeXml(lane)}"><line x1="${LEFT - 8}" y1="${y(lane)}" ` +
        `x2="${WIDTH - RIGHT + 20}" y2="${y(lane)}" stroke="${COLORS.lane}" stroke-width="1.5"/>` +
        `<text x="${LEFT - 16}" y="${y(lane) + 4}" text-anchor="end" font-weight="600" ` +
        `font-size="14" fill="${COLORS.text}">${escapeXml(capitalise(lane))}</text></g>`,
    );
  }

  // The pause underneath, so the lease it interrupts shows through it.
  const spanOrder = { waiting: 0, pause: 1, lease: 2, stale: 3 } as const;
  for (const s of [...t.spans].sort((a, b) => spanOrder[a.kind] - spanOrder[b.kind])) out.push(span(s));
  for (const a of t.arrows) out.push(arrow(a));
  // Labels, the most telling first so that they sit nearest their points: the storage's answers and
  // the lock service's events, then the writes, then the spans.
  for (const m of [...t.marks].sort((a, b) => a.atMs - b.atMs)) {
    out.push(mark(m));
    if (m.kind === "granted" || m.kind === "queued" || m.kind === "released") continue;
    const color = m.kind === "accepted" ? COLORS.good : COLORS.bad;
    label(m.lane, x(m.atMs), 12, m.label, `${m.kind}-label`, color, true);
  }
  for (const a of t.arrows.filter((a) => a.kind === "write")) {
    label(a.from, x(a.fromMs), 6, a.label, "write-label", a.accepted ? COLORS.good : COLORS.bad);
  }
  for (const s of [...t.spans].sort((a, b) => a.fromMs - b.fromMs)) {
    const color = s.kind === "lease" ? COLORS.lease : s.kind === "stale" ? COLORS.stale : COLORS[s.kind];
    label(s.lane, x(s.fromMs), 3, s.label, `span-label ${s.kind}-label`, color);
  }
  out.push("</svg>");
  return out.join("\n");

  function span(s: Span): string {
    const x1 = x(s.fromMs);
    const w = Math.max(2, x(s.toMs) - x1);
    const ly = y(s.lane);
    const attrs = `class="span ${s.kind}" data-kind="${s.kind}" data-from-ms="${Math.round(s.fromMs)}" data-to-ms="${Math.round(s.toMs)}"`;
    const title = `<title>${escapeXml(s.label)}</title>`;
    if (s.kind === "waiting") {
      return `<line ${attrs} x1="${x1.toFixed(1)}" y1="${ly}" x2="${(x1 + w).toFixed(1)}" y2="${ly}" stroke="${COLORS.waiting}" stroke-width="3" stroke-dasharray="2 4">${title}</line>`;
    }
    if (s.kind === "lease") {
      return `<rect ${attrs} x="${x1.toFixed(1)}" y="${ly - 5}" width="${w.toFixed(1)}" height="10" rx="3" fill="${COLORS.lease}" opacity="0.85">${title}</rect>`;
    }
    if (s.kind === "stale") {
      return `<rect ${attrs} x="${x1.toFixed(1)}" y="${ly - 5}" width="${w.toFixed(1)}" height="10" rx="3" fill="#fae8ff" fill-opacity="0.85" stroke="${COLORS.stale}" stroke-dasharray="4 3">${title}</rect>`;
    }
    return `<rect ${attrs} x="${x1.toFixed(1)}" y="${ly - 13}" width="${w.toFixed(1)}" height="26" fill="url(#hatch-${t.scenario})" stroke="${COLORS.pause}" stroke-width="1.5">${title}</rect>`;
  }

  function arrow(a: Arrow): string {
    const color = a.kind === "grant" ? "lease" : a.accepted ? "good" : "bad";
    const y1 = y(a.from);
    const y2 = y(a.to);
    // Stop short of the lane so the head is visible on the bar it points at.
    const dir = y2 > y1 ? 1 : -1;
    const accepted = a.accepted === undefined ? "" : ` data-accepted="${a.accepted}"`;
    return (
      `<line class="arrow ${a.kind}" data-kind="${a.kind}" data-token="${tokenText(a.token)}"${accepted} ` +
      `x1="${x(a.fromMs).toFixed(1)}" y1="${y1 + dir * 7}" x2="${x(a.toMs).toFixed(1)}" y2="${y2 - dir * 9}" ` +
      `stroke="${COLORS[color]}" stroke-width="2" marker-end="url(#arrow-${color}-${t.scenario})">` +
      `<title>${escapeXml(a.label)}</title></line>`
    );
  }

  function mark(m: Mark): string {
    const cx = x(m.atMs).toFixed(1);
    const cy = y(m.lane);
    const attrs = `class="mark ${m.kind}" data-kind="${m.kind}" data-token="${tokenText(m.token)}"`;
    const title = `<title>${escapeXml(m.label)}</title>`;
    switch (m.kind) {
      case "accepted":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="9" fill="${COLORS.good}"/><text x="${cx}" y="${cy + 4}" text-anchor="middle" fill="#fff" font-weight="700">✓</text></g>`;
      case "refused":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="9" fill="${COLORS.bad}"/><text x="${cx}" y="${cy + 4}" text-anchor="middle" fill="#fff" font-weight="700">✗</text></g>`;
      case "error":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="9" fill="${COLORS.bad}"/><text x="${cx}" y="${cy + 4}" text-anchor="middle" fill="#fff" font-weight="700">!</text></g>`;
      case "expired":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="9" fill="#fff" stroke="${COLORS.bad}" stroke-width="1.5"/><text x="${cx}" y="${cy + 5}" text-anchor="middle" fill="${COLORS.bad}" font-size="14" font-weight="700">✕</text></g>`;
      case "granted":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="5" fill="${COLORS.lease}"/></g>`;
      case "queued":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="5" fill="#fff" stroke="${COLORS.waiting}" stroke-dasharray="2 2"/></g>`;
      case "released":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="5" fill="#fff" stroke="${COLORS.lease}" stroke-width="1.5"/></g>`;
    }
  }
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function eventsTable(events: readonly DemoEvent[]): string {
  const rows = events.map(
    (e) =>
      `<tr><td class="t">+${(e.timeMs / 1000).toFixed(3)} s</td><td>${escapeXml(e.actor)}</td>` +
      `<td>${escapeXml(e.what)}</td><td class="t">${e.token === undefined ? "" : tokenText(e.token)}</td></tr>`,
  );
  return (
    `<details><summary>Events (${events.length}), as the processes, the lock service and the storage's ` +
    `audit log reported them</summary><table><thead><tr><th>time</th><th>who</th><th>what</th><th>token</th>` +
    `</tr></thead><tbody>${rows.join("")}</tbody></table></details>`
  );
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: ${COLORS.text};
  margin: 24px auto; max-width: ${WIDTH + 40}px; padding: 0 20px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 26px 0 2px; }
p.intro, p.setup { color: ${COLORS.muted}; margin: 2px 0 8px; }
svg.timeline { display: block; font: ${FONT}px system-ui, "DejaVu Sans", sans-serif; }
p.verdict { font-weight: 600; padding: 8px 12px; border-radius: 6px; margin: 4px 0 8px; }
p.verdict.right { background: #dcfce7; color: #14532d; }
p.verdict.wrong { background: #fee2e2; color: #7f1d1d; }
.legend { color: ${COLORS.muted}; font-size: 12px; margin: 14px 0; }
.legend.keys { display: flex; flex-wrap: wrap; gap: 4px 16px; }
.legend .key { white-space: nowrap; display: inline-flex; align-items: center; gap: 4px; }
.legend svg.icon { flex: none; }
details { margin: 4px 0 14px; }
table { border-collapse: collapse; font-size: 12px; }
td, th { text-align: left; padding: 2px 10px 2px 0; vertical-align: top; }
td.t { font-variant-numeric: tabular-nums; white-space: nowrap; }
`;

/**
 * The legend: one entry per kind of thing a figure can draw, keyed `span-lease`, `mark-refused`,
 * `arrow-write`… as the drawn elements' classes are, each with the same small drawing.
 */
const LEGEND: readonly [key: string, icon: string, text: string][] = [
  [
    "span-lease",
    `<rect x="1" y="4" width="20" height="8" rx="2" fill="${COLORS.lease}"/>`,
    "holds the lock (lease live)",
  ],
  [
    "span-stale",
    `<rect x="1" y="4" width="20" height="8" rx="2" fill="#fae8ff" stroke="${COLORS.stale}" stroke-dasharray="4 3"/>`,
    "lease expired, the client still thinks it holds the lock",
  ],
  [
    "span-pause",
    `<rect x="1" y="1" width="20" height="14" fill="#fef3c7" stroke="${COLORS.pause}" stroke-width="1.5"/>`,
    "process stopped",
  ],
  [
    "span-waiting",
    `<line x1="1" y1="8" x2="21" y2="8" stroke="${COLORS.waiting}" stroke-width="3" stroke-dasharray="2 4"/>`,
    "waits for the lock",
  ],
  ["mark-granted", `<circle cx="11" cy="8" r="5" fill="${COLORS.lease}"/>`, "lock granted"],
  [
    "mark-queued",
    `<circle cx="11" cy="8" r="5" fill="#fff" stroke="${COLORS.waiting}" stroke-dasharray="2 2"/>`,
    "queued for the lock",
  ],
  [
    "mark-released",
    `<circle cx="11" cy="8" r="5" fill="#fff" stroke="${COLORS.lease}" stroke-width="1.5"/>`,
    "lock released",
  ],
  [
    "mark-expired",
    `<circle cx="11" cy="8" r="7" fill="#fff" stroke="${COLORS.bad}" stroke-width="1.5"/><text x="11" y="12" text-anchor="middle" fill="${COLORS.bad}" font-size="11" font-weight="700">✕</text>`,
    "lease expired",
  ],
  [
    "arrow-grant",
    `<line x1="1" y1="8" x2="17" y2="8" stroke="${COLORS.lease}" stroke-width="2"/><path d="M15,4 L21,8 L15,12 z" fill="${COLORS.lease}"/>`,
    "the lock handed to a client",
  ],
  [
    "arrow-write",
    `<line x1="1" y1="8" x2="17" y2="8" stroke="${COLORS.good}" stroke-width="2"/><path d="M15,4 L21,8 L15,12 z" fill="${COLORS.good}"/>`,
    "a write to the storage (red if refused)",
  ],
  [
    "mark-accepted",
    `<circle cx="11" cy="8" r="7" fill="${COLORS.good}"/><text x="11" y="12" text-anchor="middle" fill="#fff" font-size="11" font-weight="700">✓</text>`,
    "write accepted",
  ],
  [
    "mark-refused",
    `<circle cx="11" cy="8" r="7" fill="${COLORS.bad}"/><text x="11" y="12" text-anchor="middle" fill="#fff" font-size="11" font-weight="700">✗</text>`,
    "write refused",
  ],
  [
    "mark-error",
    `<circle cx="11" cy="8" r="7" fill="${COLORS.bad}"/><text x="11" y="12" text-anchor="middle" fill="#fff" font-size="11" font-weight="700">!</text>`,
    "the client failed",
  ],
];

function legendEntry([key, icon, text]: readonly [string, string, string]): string {
  return (
    `<span class="key" data-key="${key}"><svg class="icon" width="22" height="16" viewBox="0 0 22 16" ` +
    `aria-hidden="true">${icon}</svg>${escapeXml(text)}</span>`
  );
}

/**
 * Renders the whole page: a heading, one figure per scenario with its verdict and events, and a
 * legend. `generatedAt` is shown in the footer.
 */
export function renderHtml(scenarios: readonly HtmlScenario[], generatedAt: Date): string {
  const sections = scenarios.map(({ timeline: t, events }) => {
    const cls = t.verdict.correct ? "right" : "wrong";
    return (
      `<section class="scenario" data-scenario="${t.scenario}" data-correct="${t.verdict.correct}">` +
      `<h2>${escapeXml(t.title)}</h2><p class="setup">${escapeXml(t.setup)}</p>\n${figure(t)}\n` +
      `<p class="verdict ${cls}">${escapeXml(t.verdict.text)}</p>${eventsTable(events)}</section>`
    );
  });
  const legend = `<p class="legend keys">${LEGEND.map(legendEntry).join("")}</p>`;
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>fencelock demo: the expired lease problem</title>",
    `<style>${STYLE}</style></head><body>`,
    "<h1>fencelock demo: a paused lock holder, with and without fencing tokens</h1>",
    '<p class="intro">Real processes: two clients take the same lock with a short lease; client 1 is ' +
      "stopped while holding it, its lease expires, client 2 takes the lock and writes, then client 1 " +
      "wakes up and writes too. Every mark below was reported by the processes themselves, by the lock " +
      "service, or by the storage's audit log.</p>",
    legend,
    ...sections,
    `<p class="legend">Generated by <code>fencelock demo</code> at ${escapeXml(generatedAt.toISOString())}.</p>`,
    "</body></html>",
    "",
  ].join("\n");
}
