// Makes sure the programs the test suite runs for real are installed: etcd and etcdctl (Debian's
// etcd-server and etcd-client), Chromium (Debian's chromium) and PostgreSQL (Debian's postgresql). As
// root, missing ones are installed with apt-get; otherwise the script says what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";

const onPath = (bin) => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0;
// Debian keeps PostgreSQL's server programs off PATH, under /usr/lib/postgresql/<version>/bin; the test
// kit's launcher looks there too.
const hasPostgres = () =>
  onPath("initdb") ||
  (existsSync("/usr/lib/postgresql") &&
    readdirSync("/usr/lib/postgresql").some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)));

const tools = [
  { bin: "etcd", pkg: "etcd-server" },
  { bin: "etcdctl", pkg: "etcd-client" },
  { bin: "chromium", pkg: "chromium" },
  { bin: "initdb", pkg: "postgresql", present: hasPostgres },
];

const has = (tool) => (tool.present ? tool.present() : onPath(tool.bin));
const missing = tools.filter((t) => !has(t));
if (missing.length === 0) process.exit(0);

const pkgs = missing.map((t) => t.pkg);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot || !onPath("apt-get")) {
  console.error(
    `fencelock tests need ${missing.map((t) => t.bin).join(", ")} (PostgreSQL's initdb on PATH or under ` +
      "/usr/lib/postgresql/<version>/bin, the others on PATH).\n" +
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
const still = missing.filter((t) => !has(t));
if (still.length > 0) {
  console.error(`still missing after apt-get: ${still.map((t) => t.bin).join(", ")}`);
  process.exit(1);
}
