// Builds only when a source is newer than the last build, so `npm start` and the benchmarks do not pay
// for the TypeScript compiler on every run. The build itself is incremental too (tsconfig's
// tsBuildInfoFile), so a real change recompiles only what it touched.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

const stamp = "dist/.tsbuildinfo";

function newest(path) {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

const built = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const sources = Math.max(...["src", "test", "bench", "proto", "tsconfig.json", "package.json"].map(newest));
if (sources > built) {
  const tsc = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], {
    stdio: "inherit",
  });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // tsc leaves its build info alone when nothing it emits changed; this run has seen every source.
  const now = new Date();
  utimesSync(stamp, now, now);
}
