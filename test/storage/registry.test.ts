/** The error registry and `docs/errors.md` must list the same codes, statuses and titles, in order. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { PROBLEMS } from "../../src/storage/index.js";

const DOC = new URL("../../../docs/errors.md", import.meta.url);

test("docs/errors.md documents exactly the error registry", () => {
  const rows = readFileSync(DOC, "utf8")
    .split("\n")
    .map((line) => /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*(.+?)\s*\|$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ code: m[1], status: Number(m[2]), title: m[3] }));
  assert.deepEqual(
    rows,
    PROBLEMS.map((p) => ({ code: p.code, status: p.status, title: p.title })),
  );
});

test("registry codes are unique and statuses are HTTP errors", () => {
  assert.equal(new Set(PROBLEMS.map((p) => p.code)).size, PROBLEMS.length);
  for (const p of PROBLEMS) assert.ok(p.status >= 400 && p.status <= 599, p.code);
});
