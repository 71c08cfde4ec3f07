/**
 * A program that is not installed fails a launch at once with a clear message and leaves nothing
 * behind, in the launcher and in every command that starts etcd. Node emits no 'exit' for a child that
 * could not be spawned, so anything that waits for 'exit' alone waits forever (issue 15, item 1).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  Child,
  CLI_PATH,
  LaunchError,
  launch,
  startEtcdCluster,
  type TempDir,
  tempDir,
} from "../../src/testkit/index.js";

/** Fails instead of hanging when `promise` takes longer than `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

let root: TempDir;
/** A PATH with nothing on it: no etcd, whatever this machine has installed. */
let emptyPath: string;
before(async () => {
  root = await tempDir("missing-binary");
  emptyPath = join(root.path, "empty-path");
  mkdirSync(emptyPath);
});
after(() => root.remove());

test("a child that could not be spawned counts as exited, so stop() and kill() return", async () => {
  const child = new Child("ghost", spawn("fencelock-no-such-program", [], { stdio: "ignore" }));
  assert.equal(await within(5000, "exited", child.exited), "ENOENT");
  assert.equal(child.running, false);
  await within(5000, "stop()", child.stop());
  await within(5000, "kill()", child.kill());
});

test("launch() of a missing program rejects with LaunchError and does not hang", async () => {
  const started = launch({
    name: "ghost",
    command: "fencelock-no-such-program",
    args: [],
    timeoutMs: 60_000,
  });
  await within(
    5000,
    "launch()",
    assert.rejects(started, (err: unknown) => {
      assert.ok(err instanceof LaunchError);
      assert.match(err.message, /could not start fencelock-no-such-program/);
      return true;
    }),
  );
});

test("startEtcdCluster without etcd says so at once and removes the member folders it made", async () => {
  mkdirSync(join(root.path, "given"));
  const dataDir = join(root.path, "given", "etcd");
  const path = process.env.PATH;
  process.env.PATH = emptyPath;
  try {
    await within(
      5000,
      "startEtcdCluster",
      assert.rejects(startEtcdCluster({ dataDir }), /etcd is not installed/),
    );
  } finally {
    process.env.PATH = path;
  }
  assert.deepEqual(readdirSync(join(root.path, "given")), [], "no member-N folders are left");
});

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

/** A base port with six free ports from it on, since `cluster up` refuses busy ones before it starts. */
async function freeBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 2 * Math.floor(Math.random() * 20_000);
    const servers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => listen(base + i)));
    await Promise.all(servers.map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
    if (servers.every((s) => s !== undefined)) return base;
  }
  throw new Error("no six consecutive free ports found");
}

/**
 * Runs the CLI with no etcd on PATH and its own TMPDIR; SIGKILLs its whole process group after 30 s
 * so a hang fails the test without leaving servers behind.
 */
function cliWithoutEtcd(
  args: string[],
  tmp: string,
): Promise<{ code: number | null; stderr: string; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd: tmp,
      env: { ...process.env, PATH: emptyPath, TMPDIR: tmp },
      stdio: ["ignore", "ignore", "pipe"],
      detached: true,
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      process.kill(-(child.pid as number), "SIGKILL");
    }, 30_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, killed });
    });
  });
}

describe("without etcd on PATH, every command that starts etcd fails fast and leaves no folders", {
  concurrency: true,
}, () => {
  const commands = [
    ["cluster", "up", "--ports-base", "BASE", "--state", "STATE"],
    ["demo", "--etcd", "--no-html"],
    ["torture", "--backend", "etcd", "--duration", "5s", "--quiet"],
  ];
  for (const command of commands) {
    test(`fencelock ${command.join(" ")}`, async () => {
      const tmp = join(root.path, command[0] as string);
      mkdirSync(tmp);
      const state = join(tmp, "state", "fencelock");
      const base = String(await freeBase());
      const args = command.map((a) => (a === "STATE" ? state : a === "BASE" ? base : a));
      const result = await cliWithoutEtcd(args, tmp);
      assert.equal(result.killed, false, `it hung (killed after 30 s):\n${result.stderr}`);
      assert.notEqual(result.code, 0);
      assert.match(
        result.stderr,
        /etcd is not installed \(Debian: apt-get install etcd-server etcd-client\)/,
      );
      assert.deepEqual(readdirSync(tmp), [], "no temporary or state folders are left");
      assert.equal(existsSync(state), false);
    });
  }
});
