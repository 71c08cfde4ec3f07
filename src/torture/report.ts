/**
 * The end of a run, for people and for programs: a summary table for the terminal and the JSON report
 * (the full history, the audit log, the schedule and the checker's findings, tokens as decimal strings).
 */
import type { ViolationKind } from "./checker.js";
import type { OpKind, Outcome } from "./history.js";
import type { TortureResult } from "./run.js";

/** Version of the JSON report's shape. */
export const REPORT_VERSION = 1;

/** The JSON report of a run, as text. Bigints are written as decimal strings. */
export function jsonReport(result: TortureResult): string {
  const body = {
    version: REPORT_VERSION,
    result: result.check.ok ? "PASS" : "FAIL",
    ...result,
  };
  return JSON.stringify(body, (_key, value) => (typeof value === "bigint" ? value.toString() : value), 1);
}

const GROUPS: { title: string; kinds: ViolationKind[] }[] = [
  { title: "mutual exclusion", kinds: ["token-regression", "foreign-token", "duplicate-grant"] },
  { title: "lost updates", kinds: ["lost-update", "unexplained-value"] },
  { title: "durability", kinds: ["durability"] },
  { title: "stale reads", kinds: ["stale-read"] },
];

function pad(cell: string, width: number, left: boolean): string {
  return left ? cell.padEnd(width) : cell.padStart(width);
}

/** Aligns rows in columns: the first column and text to the left, numbers to the right. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        /^\d+$/.test(cell) || i === 0 ? pad(cell, widths[i] ?? 0, i === 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join("  ")
      .trimEnd(),
  );
}

/** The terminal summary of a run: configuration, faults, operations, counters, the check, a verdict. */
export function summaryText(result: TortureResult, maxViolations = 5): string {
  const o = result.options;
  const lines: string[] = [];
  const secs = ((result.endedMs - result.startedMs) / 1000).toFixed(1);
  lines.push(
    `fencelock torture: mode ${o.mode}, backend ${o.backend}${o.backend === "etcd" ? " (3 members)" : ""}, resource ${o.resource}, ${o.clients} clients, ${o.keys} key(s) (${o.scope === "one" ? "one lock" : o.scope === "election" ? "one election" : "a lock per key"}), ${(o.durationMs / 1000).toFixed(0)} s planned / ${secs} s total, seed ${o.seed}`,
  );
  const byKind = new Map<string, number>();
  for (const f of result.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const failed = result.faults.filter((f) => f.error !== undefined).length;
  lines.push(
    `faults: ${
      result.faults.length === 0 ? "none" : [...byKind].map(([k, n]) => `${k} ${n}`).join(", ")
    } (${result.faults.length} injected, ${failed} failed); worker crashes: ${result.crashes.length}`,
  );
  lines.push("");
  const kinds: OpKind[] = ["lock", "read", "write", "unlock"];
  const outcomes: Outcome[] = ["ok", "fail", "unknown"];
  const opRows = [["operation", ...outcomes]];
  for (const kind of kinds) {
    const ops = result.ops.filter((op) => op.kind === kind);
    opRows.push([kind, ...outcomes.map((out) => String(ops.filter((op) => op.outcome === out).length))]);
  }
  lines.push(...table(opRows), "");
  const keyRows = [["key", "accepted writes", "acknowledged", "final", "lost"]];
  for (const k of result.check.keys) {
    keyRows.push([
      k.key,
      String(k.accepted),
      String(k.acknowledged),
      String(k.final ?? "missing"),
      String(k.lost),
    ]);
  }
  lines.push(...table(keyRows), "");
  const checkRows = [["check", "violations", "by kind"]];
  for (const g of GROUPS) {
    const n = g.kinds.reduce((sum, k) => sum + result.check.counts[k], 0);
    const detail = g.kinds.map((k) => `${k} ${result.check.counts[k]}`).join(", ");
    const title =
      g.title === "stale reads" && o.mode !== "fenced" ? "stale reads (fenced mode only)" : g.title;
    checkRows.push([title, String(n), detail]);
  }
  lines.push(...table(checkRows), "");
  const vs = result.check.violations;
  for (const v of vs.slice(0, maxViolations)) {
    const from = new Date(v.window.fromMs).toISOString().slice(11, 23);
    const ms = (v.window.toMs - v.window.fromMs).toFixed(0);
    lines.push(`- [${v.kind}] ${v.message}`);
    lines.push(
      `  window: ${from} +${ms} ms; ops ${v.window.ops.join(", ") || "-"}; audit #${v.window.audit.join(", #") || "-"}`,
    );
  }
  if (vs.length > maxViolations)
    lines.push(`- … and ${vs.length - maxViolations} more (see the JSON report)`);
  lines.push(
    result.check.ok
      ? "RESULT: PASS, no violations"
      : `RESULT: FAIL, ${vs.length} violation(s); lost increments: ${result.check.keys.reduce((n, k) => n + k.lost, 0)}`,
  );
  return lines.join("\n");
}
