/**
 * The run drawn as a self-contained HTML page: one lane per worker slot with each lock hold as a bar and
 * each write as a tick (green accepted, red refused, grey unknown), a lane of faults, a lane of the
 * storage's accepted writes, and every violation's window as a red band, numbered as in the list below.
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

/** The HTML page of a run. */
export function htmlReport(result: TortureResult): string {
  const o = result.options;
  const t0 = result.startedMs;
  const t1 = Math.max(result.endedMs, t0 + 1);
  const width = Math.min(20_000, Math.max(1200, Math.round(((t1 - t0) / 1000) * 60)));
  const left = 110;
  const laneH = 26;
  const x = (ms: number) => (left + ((ms - t0) / (t1 - t0)) * width).toFixed(1);
  // The last lane shows what the resource accepted: the storage, or the database's audit table.
  const lanes = ["faults", ...Array.from({ length: o.clients }, (_, i) => `w${i}`), o.resource];
  const height = lanes.length * laneH + 40;
  const y = (lane: number) => 20 + lane * laneH;
  const parts: string[] = [];
  lanes.forEach((name, i) => {
    parts.push(`<text x="4" y="${y(i) + 16}" class="lane">${esc(name)}</text>`);
    parts.push(
      `<line x1="${left}" x2="${left + width}" y1="${y(i) + laneH - 2}" y2="${y(i) + laneH - 2}" class="grid"/>`,
    );
  });
  for (let s = 0; s <= (t1 - t0) / 1000; s += 5) {
    const xs = x(t0 + s * 1000);
    parts.push(`<line x1="${xs}" x2="${xs}" y1="14" y2="${height - 20}" class="tick"/>`);
    parts.push(`<text x="${xs}" y="${height - 6}" class="axis">${s}s</text>`);
  }
  result.check.violations.forEach((v, i) => {
    const x0 = Number(x(v.window.fromMs));
    const w = Math.max(3, Number(x(v.window.toMs)) - x0);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="14" width="${w.toFixed(1)}" height="${height - 34}" class="violation"><title>${esc(
        `#${i + 1} ${v.kind}: ${v.message}`,
      )}</title></rect>`,
      `<text x="${x0.toFixed(1)}" y="12" class="vlabel">#${i + 1}</text>`,
    );
  });
  for (const f of result.faults) {
    const x0 = Number(x(f.startMs));
    const w = Math.max(2, Number(x(Math.max(f.endMs, f.startMs))) - x0);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${y(0) + 3}" width="${w.toFixed(1)}" height="${laneH - 8}" class="fault"><title>${esc(
        `${f.kind} ${f.target}${f.error ? ` (error: ${f.error})` : ""}`,
      )}</title></rect>`,
    );
  }
  for (const h of holdsOf(result.ops, t1)) {
    const x0 = Number(x(h.fromMs));
    const w = Math.max(1, Number(x(h.toMs)) - x0);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${y(h.slot + 1) + 5}" width="${w.toFixed(1)}" height="${laneH - 12}" class="hold"><title>${esc(
        `${h.worker} holds token ${h.token}`,
      )}</title></rect>`,
    );
  }
  const accepted = new Set(
    result.audit.flatMap((a) => (a.op === "write" && a.accepted ? [decodeValue(a.value)?.ref] : [])),
  );
  for (const op of result.ops) {
    if (op.kind !== "write") continue;
    const cls = accepted.has(op.ref)
      ? "ok"
      : op.outcome === "fail"
        ? "refused"
        : op.outcome === "ok"
          ? "ok"
          : "unknown";
    const xs = x(op.completeMs ?? op.invokeMs);
    parts.push(
      `<line x1="${xs}" x2="${xs}" y1="${y(op.slot + 1) + 2}" y2="${y(op.slot + 1) + laneH - 4}" class="w ${cls}"><title>${esc(
        `${op.ref} write ${op.key}=${op.written ?? ""} token ${op.token ?? "none"} ${op.outcome}${op.error ? ` ${op.error}` : ""}`,
      )}</title></line>`,
    );
  }
  const storageLane = lanes.length - 1;
  for (const a of result.audit) {
    if (a.op !== "write" || !a.accepted) continue;
    parts.push(
      `<circle cx="${x(a.timeMs)}" cy="${y(storageLane) + 12}" r="2" class="acc"><title>${esc(
        `#${a.seq} ${a.key}=${a.value ?? ""} token ${a.token ?? "none"}`,
      )}</title></circle>`,
    );
  }
  const list = result.check.violations
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
  const title = `fencelock torture: ${o.mode} on ${o.backend}, seed ${o.seed}: ${
    result.check.ok ? "PASS" : `FAIL (${result.check.violations.length} violations)`
  }`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222}
.scroll{overflow-x:auto;border:1px solid #ccc}
.lane{font:12px monospace;fill:#333}.axis{font:10px monospace;fill:#777}
.grid{stroke:#eee}.tick{stroke:#f2f2f2}
.hold{fill:#9ecae1}.fault{fill:#fdae6b}.violation{fill:rgba(220,0,0,.18);stroke:#d00;stroke-width:1}
.vlabel{font:10px monospace;fill:#d00}
.w{stroke-width:2}.ok{stroke:#2ca02c}.refused{stroke:#d62728}.unknown{stroke:#999}.acc{fill:#2ca02c}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${o.clients} clients, ${o.keys} key(s), faults: ${esc(o.faults.join(", ") || "none")}; lanes: faults (orange), workers (blue bars = lock held; ticks = writes: green accepted, red refused, grey unknown), ${esc(o.resource)} (accepted writes). Red bands: violation windows.</p>
<div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${height}">
${parts.join("\n")}
</svg></div>
<h2>Violations (${result.check.violations.length})</h2>
<ol>${list || "<li>none</li>"}</ol>
</body></html>
`;
}
