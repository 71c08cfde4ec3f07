// Makes sure the programs the test suite runs for real are installed: etcd and etcdctl (Debian's
// etcd-server and etcd-client) and Chromium (Debian's chromium). As root, missing ones are installed
// with apt-get; otherwise the script says what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";

const tools = [
  { bin: "etcd", pkg: "etcd-server" },
  { bin: "etcdctl", pkg: "etcd-client" },
  { bin: "chromium", pkg: "chromium" },
];

const has = (bin) => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0;
const missing = tools.filter((t) => !has(t.bin));
if (missing.length === 0) process.exit(0);

const pkgs = missing.map((t) => t.pkg);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot || !has("apt-get")) {
  console.error(
    `fencelock tests need ${missing.map((t) => t.bin).join(", ")} on PATH.\n` +
      `Install them (on Debian/Ubuntu: sudo apt-get install ${pkgs.join(" ")}) and run npm test again.`,
  );
  process.exit(1);
}
console.log(`installing ${pkgs.join(", ")} with apt-get…`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], {
  stdio: "inherit",
  env,
});
const still = missing.filter((t) => !has(t.bin));
if (still.length > 0) {
  console.error(`still missing after apt-get: ${still.map((t) => t.bin).join(", ")}`);
  process.exit(1);
}
