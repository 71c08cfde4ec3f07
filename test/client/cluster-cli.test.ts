/**
 * `fencelock cluster up|down|status` as a user runs it: the real CLI, real detached etcd members, a
 * temporary state directory and free ports (`--ports-base`), so it never meets anyone else's cluster.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "../../src/client/index.js";
import { CLI_PATH, type TempDir, tempDir } from "../../src/testkit/index.js";

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, "cluster", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fencelock cluster ${args.join(" ")} did not finish in 60 s`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

/** A base port with six free ports from it on. */
async function freeBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 2 * Math.floor(Math.random() * 20_000);
    const servers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => listen(base + i)));
    await Promise.all(servers.map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
    if (servers.every((s) => s !== undefined)) return base;
  }
  throw new Error("no six consecutive free ports found");
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").length > 0;
  } catch {
    return false;
  }
};

describe("fencelock cluster", () => {
  let dir: TempDir;
  let state: string;

  before(async () => {
    dir = await tempDir("cluster-cli");
    state = join(dir.path, "state");
  });

  after(async () => {
    if (existsSync(join(state, "cluster.json"))) await cli(["down", "--state", state]);
    await dir.remove();
  });

  it("up starts three members in the background, status shows the leader, down stops exactly them", async () => {
    const base = await freeBase();
    const upRun = await cli(["up", "--state", state, "--ports-base", String(base)]);
    assert.equal(upRun.code, 0, upRun.stderr);
    const recorded = JSON.parse(readFileSync(join(state, "cluster.json"), "utf8")) as {
      members: { pid: number; endpoint: string }[];
    };
    const endpoints = recorded.members.map((m) => m.endpoint);
    assert.deepEqual(
      endpoints,
      [base, base + 2, base + 4].map((p) => `127.0.0.1:${p}`),
    );
    assert.ok(
      recorded.members.every((m) => alive(m.pid)),
      "members outlive the up command",
    );

    const statusRun = await cli(["status", "--state", state]);
    assert.equal(statusRun.code, 0, statusRun.stdout + statusRun.stderr);
    const rows = statusRun.stdout.trim().split("\n").slice(1);
    assert.equal(rows.length, 3);
    assert.ok(rows.every((r) => r.includes("healthy")));
    assert.equal(rows.filter((r) => r.includes("*")).length, 1, "exactly one leader");

    const client = connect({ endpoints });
    try {
      await client.withLock("/cluster-cli", async ({ token }) => assert.ok(token > 0n), { ttl: 5 });
    } finally {
      await client.close();
    }

    const again = await cli(["up", "--state", state, "--ports-base", String(base)]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already running/);

    const downRun = await cli(["down", "--state", state, "--purge"]);
    assert.equal(downRun.code, 0, downRun.stderr);
    assert.ok(
      recorded.members.every((m) => !alive(m.pid)),
      "down stopped the recorded members",
    );
    assert.equal((await cli(["status", "--state", state])).code, 1);
  });

  it("up says clearly when a port is busy, and starts nothing", async () => {
    const base = await freeBase();
    const blocker = await listen(base + 2);
    assert.ok(blocker);
    try {
      const run = await cli(["up", "--state", state, "--ports-base", String(base)]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`port ${base + 2} .* busy`));
      assert.equal(existsSync(join(state, "cluster.json")), false);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it("rejects bad flags and actions with exit code 2", async () => {
    assert.equal((await cli(["sideways"])).code, 2);
    assert.equal((await cli(["up", "--nope"])).code, 2);
    assert.equal((await cli(["up", "--state", state, "--ports-base", "80"])).code, 2);
    assert.equal((await cli(["--help"])).code, 0);
  });
});
