/**
 * The run drawn as a self-contained HTML page that fits a 1200 px window whatever the run's length: a
 * summary table (ops, faults, violations, verdict), then one lane per worker slot with each lock hold
 * as a bar and each write as a tick (green accepted, grey unknown; a refused write is a red cross), a
 * lane of labelled fault bands, a lane of what the storage decided (accepted dots, refused stale writes
 * as red crosses), and every violation's window as a red band, numbered as in the list below.
 */
import { decodeValue, type Op } from "./history.js";
import type { TortureResult } from "./run.js";

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Hold {
  slot: number;
  worker: string;
  token: bigint | null;
  fromMs: number;
  toMs: number;
}

function holdsOf(ops: readonly Op[], endMs: number): Hold[] {
  const open = new Map<string, Hold>();
  const holds: Hold[] = [];
  for (const op of ops) {
    if (op.kind === "lock" && op.outcome === "ok" && op.completeMs !== null) {
      const hold = { slot: op.slot, worker: op.worker, token: op.token, fromMs: op.completeMs, toMs: endMs };
      open.set(op.worker, hold);
      holds.push(hold);
    } else if (op.kind === "unlock") {
      const hold = open.get(op.worker);
      if (hold) hold.toMs = op.completeMs ?? op.invokeMs;
      open.delete(op.worker);
    }
  }
  return holds;
}

/** Width of a label in the figure's 10 px monospace font (6 px a glyph), erring wide. */
function textWidth(text: string): number {
  return text.length * 6.3 + 4;
}

/**
 * Rows of labels above the things they name, row 0 nearest: a label takes the first row where it
 * clears every label already there, with a little air; `undefined` when no row has room, and the label
 * is left out (its band keeps its title).
 */
class Rows {
  private readonly rows: [number, number][][];

  constructor(count: number) {
    this.rows = Array.from({ length: count }, () => []);
  }

  place(from: number, to: number): number | undefined {
    const i = this.rows.findIndex((row) => row.every(([c, d]) => to + 4 <= c || from >= d + 4));
    if (i === -1) return undefined;
    this.rows[i]?.push([from, to]);
    return i;
  }
}

/** The figure's width in CSS px: with the page's margins it fits a 1200 px window. */
const FIGURE_WIDTH = 1120;
const LEFT = 110;
const RIGHT = 16;
const LANE_H = 26;
/** Rows of violation numbers above the figure. */
const VIOLATION_ROWS = 2;
/** Fault labels stand upright above their bands, this far apart at least (a line of 10 px text). */
const FAULT_LABEL_GAP = 13;
/** The tallest fault label; a longer one is shortened to the fault's kind. */
const FAULT_LABEL_MAX = 200;
const ROW_H = 13;

/** Keys of the legend, named `<first class>-<data-kind>` as the drawn elements are. */
const LEGEND: readonly [key: string, icon: string, text: string][] = [
  ["hold-held", '<rect x="1" y="4" width="20" height="8" class="hold"/>', "a worker holds the lock"],
  ["w-ok", '<line x1="11" x2="11" y1="1" y2="15" class="w ok"/>', "write acknowledged"],
  ["w-unknown", '<line x1="11" x2="11" y1="1" y2="15" class="w unknown"/>', "write with no answer"],
  [
    "w-refused",
    '<path d="M6,3 L16,13 M16,3 L6,13" class="x"/>',
    "write refused (the storage's red crosses: stale tokens it refused)",
  ],
  ["acc-accepted", '<circle cx="11" cy="8" r="3" class="acc"/>', "write the storage accepted"],
  ["fault-band", '<rect x="1" y="2" width="20" height="12" class="fault"/>', "fault injected (labelled)"],
  [
    "violation-window",
    '<rect x="1" y="1" width="20" height="14" class="violation"/>',
    "violation window (#n as listed)",
  ],
];

/** The HTML page of a run. */
export function htmlReport(result: TortureResult): string {
  const o = result.options;
  const t0 = result.startedMs;
  const t1 = Math.max(result.endedMs, t0 + 1);
  const plot = FIGURE_WIDTH - LEFT - RIGHT;
  const xn = (ms: number) => LEFT + ((Math.min(Math.max(ms, t0), t1) - t0) / (t1 - t0)) * plot;
  const x = (ms: number) => xn(ms).toFixed(1);
  const vTop = 4;
  const faultTop = vTop + VIOLATION_ROWS * ROW_H + 4;
  // Upright labels, one per band while they are a line apart: each names its band unmistakably.
  const faultLabels: { x0: number; text: string }[] = [];
  for (const f of result.faults) {
    const x0 = xn(f.startMs);
    const last = faultLabels.at(-1);
    if (last && x0 - last.x0 < FAULT_LABEL_GAP) continue;
    const full = `${f.kind} ${f.target}`;
    faultLabels.push({ x0, text: textWidth(full) <= FAULT_LABEL_MAX ? full : f.kind });
  }
  const labelsH = Math.max(0, ...faultLabels.map((l) => Math.min(FAULT_LABEL_MAX, textWidth(l.text))));
  const faultBand = faultTop + labelsH + 4;
  const faultsH = faultBand + 16 - faultTop;
  // The last lane shows what the resource decided: the storage, or the database's audit table.
  const workers = Array.from({ length: o.clients }, (_, i) => `w${i}`);
  const laneTop = (i: number) => faultTop + faultsH + i * LANE_H;
  const storageLane = workers.length;
  const plotBottom = laneTop(storageLane + 1);
  const height = plotBottom + 22;
  const parts: string[] = [];
  parts.push(`<text x="4" y="${faultBand + 12}" class="lane">faults</text>`);
  [...workers, o.resource].forEach((name, i) => {
    parts.push(`<text x="4" y="${laneTop(i) + 16}" class="lane">${esc(name)}</text>`);
    parts.push(
      `<line x1="${LEFT}" x2="${LEFT + plot}" y1="${laneTop(i) + LANE_H - 2}" y2="${laneTop(i) + LANE_H - 2}" class="grid"/>`,
    );
  });
  // About ten ticks, on a round number of seconds.
  const spanS = (t1 - t0) / 1000;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => spanS / s <= 12) ?? 7200;
  for (let s = 0; s <= spanS; s += step) {
    const xs = x(t0 + s * 1000);
    parts.push(`<line x1="${xs}" x2="${xs}" y1="${faultTop}" y2="${plotBottom}" class="tick"/>`);
    parts.push(`<text x="${xs}" y="${height - 6}" class="axis" text-anchor="middle">${s}s</text>`);
  }
  const vRows = new Rows(VIOLATION_ROWS);
  result.check.violations.forEach((v, i) => {
    const x0 = xn(v.window.fromMs);
    const w = Math.max(3, xn(v.window.toMs) - x0);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${faultTop}" width="${w.toFixed(1)}" height="${plotBottom - faultTop}" class="violation" data-kind="window"><title>${esc(
        `#${i + 1} ${v.kind}: ${v.message}`,
      )}</title></rect>`,
    );
    const text = `#${i + 1}`;
    const row = vRows.place(x0, x0 + textWidth(text));
    if (row !== undefined) {
      parts.push(
        `<text x="${x0.toFixed(1)}" y="${vTop + (VIOLATION_ROWS - row) * ROW_H - 3}" class="label vlabel">${text}</text>`,
      );
    }
  });
  for (const f of result.faults) {
    const x0 = xn(f.startMs);
    const w = Math.max(2, xn(Math.max(f.endMs, f.startMs)) - x0);
    const what = `${f.kind} ${f.target}${f.error ? ` (error: ${f.error})` : ""}`;
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${faultBand}" width="${w.toFixed(1)}" height="14" class="fault${f.error ? " failed" : ""}" data-kind="band"><title>${esc(what)}</title></rect>`,
    );
  }
  for (const { x0, text } of faultLabels) {
    // Rotated about its own start: the text rises from just above the band, baseline to its right.
    const lx = (x0 + 9).toFixed(1);
    const ly = (faultBand - 3).toFixed(1);
    parts.push(
      `<text x="${lx}" y="${ly}" transform="rotate(-90 ${lx} ${ly})" class="label flabel">${esc(text)}</text>`,
    );
  }
  for (const h of holdsOf(result.ops, t1)) {
    const x0 = xn(h.fromMs);
    const w = Math.max(1, xn(h.toMs) - x0);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${laneTop(h.slot) + 5}" width="${w.toFixed(1)}" height="${LANE_H - 12}" class="hold" data-kind="held"><title>${esc(
        `${h.worker} holds token ${h.token}`,
      )}</title></rect>`,
    );
  }
  const accepted = new Set(
    result.audit.flatMap((a) => (a.op === "write" && a.accepted ? [decodeValue(a.value)?.ref] : [])),
  );
  const cross = (cx: string, cy: number, title: string) =>
    `<path d="M${Number(cx) - 5},${cy - 5} L${Number(cx) + 5},${cy + 5} M${Number(cx) + 5},${cy - 5} L${Number(cx) - 5},${cy + 5}" class="w x" data-kind="refused"><title>${esc(title)}</title></path>`;
  // Refused writes are drawn last, so that no tick or dot hides one.
  const crosses: string[] = [];
  for (const op of result.ops) {
    if (op.kind !== "write") continue;
    const kind = accepted.has(op.ref)
      ? "ok"
      : op.outcome === "fail"
        ? "refused"
        : op.outcome === "ok"
          ? "ok"
          : "unknown";
    const xs = x(op.completeMs ?? op.invokeMs);
    const title = `${op.ref} write ${op.key}=${op.written ?? ""} token ${op.token ?? "none"} ${op.outcome}${op.error ? ` ${op.error}` : ""}`;
    const top = laneTop(op.slot);
    (kind === "refused" ? crosses : parts).push(
      kind === "refused"
        ? cross(xs, top + 12, title)
        : `<line x1="${xs}" x2="${xs}" y1="${top + 2}" y2="${top + LANE_H - 4}" class="w ${kind}" data-kind="${kind}"><title>${esc(title)}</title></line>`,
    );
  }
  for (const a of result.audit) {
    if (a.op !== "write") continue;
    const title = `#${a.seq} ${a.key}=${a.value ?? ""} token ${a.token ?? "none"}${a.accepted ? "" : ` refused (${a.reason})`}`;
    (a.accepted ? parts : crosses).push(
      a.accepted
        ? `<circle cx="${x(a.timeMs)}" cy="${laneTop(storageLane) + 12}" r="3" class="acc" data-kind="accepted"><title>${esc(title)}</title></circle>`
        : cross(x(a.timeMs), laneTop(storageLane) + 12, title),
    );
  }
  parts.push(...crosses);
  const violations = result.check.violations;
  const list = violations
    .slice(0, 500)
    .map(
      (v, i) =>
        `<li><b>#${i + 1} ${esc(v.kind)}</b> ${esc(v.message)}<br><small>window ${esc(
          new Date(v.window.fromMs).toISOString(),
        )} + ${(v.window.toMs - v.window.fromMs).toFixed(0)} ms; ops ${esc(v.window.ops.join(", "))}; audit ${esc(
          v.window.audit.map((s) => `#${s}`).join(", "),
        )}</small></li>`,
    )
    .join("\n");
  const verdict = result.check.ok ? "PASS" : `FAIL (${violations.length} violations)`;
  const title = `fencelock torture: ${o.mode} on ${o.backend}, seed ${o.seed}: ${verdict}`;
  const writes = result.audit.filter((a) => a.op === "write");
  const failedFaults = result.faults.filter((f) => f.error).length;
  const summary: [string, string][] = [
    ["verdict", verdict],
    ["duration", `${spanS.toFixed(spanS < 10 ? 3 : 1)} s`],
    ["operations", String(result.ops.length)],
    ["faults", `${result.faults.length}${failedFaults ? ` (${failedFaults} failed to inject or heal)` : ""}`],
    ["writes accepted", String(writes.filter((a) => a.accepted).length)],
    ["stale writes refused", String(writes.filter((a) => !a.accepted).length)],
    ["violations", String(violations.length)],
  ];
  const legend = LEGEND.map(
    ([key, icon, text]) =>
      `<span class="key" data-key="${key}"><svg width="22" height="16" viewBox="0 0 22 16" aria-hidden="true">${icon}</svg>${esc(text)}</span>`,
  ).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222;overflow-wrap:anywhere}
svg.run{display:block;max-width:100%;height:auto;border:1px solid #ccc}
.lane{font:12px monospace;fill:#333}.axis{font:10px monospace;fill:#777}
.grid{stroke:#eee}.tick{stroke:#f2f2f2}
.hold{fill:#9ecae1}.fault{fill:#fdae6b}.fault.failed{fill:#bbb}.violation{fill:rgba(220,0,0,.18);stroke:#d00;stroke-width:1}
.leader{stroke:#fdae6b}.vlabel{font:10px monospace;fill:#d00}.flabel{font:10px monospace;fill:#a14d00}
.w{stroke-width:2}.ok{stroke:#2ca02c}.unknown{stroke:#999}.x{stroke:#d62728;stroke-width:2.5;fill:none}.acc{fill:#2ca02c}
table.summary{border-collapse:collapse;margin:8px 0}table.summary th,table.summary td{text-align:left;padding:2px 14px 2px 0}
table.summary td{font-variant-numeric:tabular-nums}
.verdict.pass{color:#14532d;font-weight:600}.verdict.fail{color:#b91c1c;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;color:#555;font-size:12px;margin:8px 0}
.legend .key{display:inline-flex;align-items:center;gap:4px;white-space:nowrap}
</style></head><body>
<h1>${esc(title)}</h1>
<table class="summary"><tbody>${summary
    .map(
      ([k, v], i) =>
        `<tr><th>${k}</th><td${i === 0 ? ` class="verdict ${result.check.ok ? "pass" : "fail"}"` : ""}>${esc(v)}</td></tr>`,
    )
    .join("")}</tbody></table>
<p>${o.clients} clients, ${o.keys} key(s), faults: ${esc(o.faults.join(", ") || "none")}. Time runs left to right over the whole run.</p>
<p class="legend">${legend}</p>
<svg xmlns="http://www.w3.org/2000/svg" class="run" width="${FIGURE_WIDTH}" height="${height}" viewBox="0 0 ${FIGURE_WIDTH} ${height}">
${parts.join("\n")}
</svg>
<h2>Violations (${violations.length})</h2>
${violations.length === 0 ? "<p>No violations: the checker found the history consistent.</p>" : `<ol>${list}</ol>`}
</body></html>
`;
}
