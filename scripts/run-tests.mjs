// Runs every compiled test file under dist/test with node's test runner. Node 20's `--test` takes no
// globs, so the files are listed here. Extra arguments filter by path substring:
// `npm test -- storage` runs only the files whose path contains "storage".
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect("dist/test").filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--test", "--test-reporter=spec", "--test-timeout=180000", ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
