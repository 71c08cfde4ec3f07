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

const WIDTH = 1000;
const LEFT = 130;
const RIGHT = 150;
const TOP = 58;
const LANE_GAP = 78;
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

/** Places labels on a lane without overlaps: the first level (above, then below) with room. */
class LabelPlacer {
  private readonly taken = new Map<string, [number, number][]>();
  private static readonly LEVELS = [-17, -32, 27, 42];

  place(
    lane: string,
    x: number,
    text: string,
    maxX: number,
    below = false,
  ): { x: number; y: number; anchor: string } {
    const w = text.length * FONT * 0.56 + 6;
    const leftward = x + w > maxX;
    const from = leftward ? x - w : x;
    const to = leftward ? x : x + w;
    const levels = below
      ? [...LabelPlacer.LEVELS.slice(2), ...LabelPlacer.LEVELS.slice(0, 2)]
      : LabelPlacer.LEVELS;
    for (const dy of levels) {
      const id = `${lane}|${dy}`;
      const spans = this.taken.get(id) ?? [];
      if (spans.every(([a, b]) => to < a || from > b)) {
        spans.push([from, to]);
        this.taken.set(id, spans);
        return { x: leftward ? x - 3 : x + 3, y: dy, anchor: leftward ? "end" : "start" };
      }
    }
    return { x: x + 3, y: LabelPlacer.LEVELS[0] as number, anchor: "start" };
  }
}

function figure(t: Timeline): string {
  const laneY = new Map(t.lanes.map((lane, i) => [lane, TOP + i * LANE_GAP]));
  const y = (lane: string) => laneY.get(lane as never) ?? TOP;
  const plot = WIDTH - LEFT - RIGHT;
  const x = (ms: number) => LEFT + (Math.max(0, ms) / t.durationMs) * plot;
  const axisY = TOP + (t.lanes.length - 1) * LANE_GAP + 56;
  const height = axisY + 34;
  const placer = new LabelPlacer();
  const maxX = WIDTH - 4;
  const out: string[] = [];
  const label = (lane: string, atX: number, text: string, cls: string, color: string) => {
    if (text === "") return;
    const p = placer.place(lane, atX, text, maxX, lane === "storage");
    out.push(
      `<text class="label ${cls}" x="${p.x.toFixed(1)}" y="${(y(lane) + p.y).toFixed(1)}" ` +
        `text-anchor="${p.anchor}" fill="${color}">${escapeXml(text)}</text>`,
    );
  };

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
      `font-size="11">seconds since client 1 started</text>`,
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
  for (const s of [...t.spans].sort((a, b) => a.fromMs - b.fromMs)) {
    const color = s.kind === "lease" ? COLORS.lease : s.kind === "stale" ? COLORS.stale : COLORS[s.kind];
    label(s.lane, x(s.fromMs), s.label, `span-label ${s.kind}-label`, color);
  }
  for (const a of t.arrows) out.push(arrow(a));
  for (const a of t.arrows.filter((a) => a.kind === "write")) {
    label(a.from, x(a.fromMs), a.label, "write-label", a.accepted ? COLORS.good : COLORS.bad);
  }
  for (const m of [...t.marks].sort((a, b) => a.atMs - b.atMs)) {
    out.push(mark(m));
    if (m.kind === "granted" || m.kind === "queued" || m.kind === "released") continue;
    const color = m.kind === "accepted" ? COLORS.good : COLORS.bad;
    label(m.lane, x(m.atMs) + 8, m.label, `${m.kind}-label`, color);
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
      case "error":
        return `<g ${attrs}>${title}<circle cx="${cx}" cy="${cy}" r="9" fill="${COLORS.bad}"/><text x="${cx}" y="${cy + 4}" text-anchor="middle" fill="#fff" font-weight="700">✗</text></g>`;
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
.legend span { margin-right: 14px; white-space: nowrap; }
details { margin: 4px 0 14px; }
table { border-collapse: collapse; font-size: 12px; }
td, th { text-align: left; padding: 2px 10px 2px 0; vertical-align: top; }
td.t { font-variant-numeric: tabular-nums; white-space: nowrap; }
`;

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
  const legend =
    '<p class="legend">' +
    [
      `<span style="color:${COLORS.lease}">▬ holds the lock (lease live)</span>`,
      `<span style="color:${COLORS.stale}">┅ lease expired, the client still thinks it holds the lock</span>`,
      `<span style="color:${COLORS.pause}">▨ process stopped</span>`,
      `<span style="color:${COLORS.waiting}">··· waits for the lock</span>`,
      `<span style="color:${COLORS.bad}">✕ lease expired</span>`,
      `<span style="color:${COLORS.good}">✓ write accepted</span>`,
      `<span style="color:${COLORS.bad}">✗ write refused</span>`,
    ].join("") +
    "</p>";
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
