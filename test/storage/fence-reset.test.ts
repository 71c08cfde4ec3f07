/**
 * An operator's fence reset: a fence poisoned by a lease ID (as a seed client writes it) refuses every
 * later holder until `fencelock storage fence reset` clears it, offline on the data directory of a
 * stopped server (refused while a server holds it) or online behind `--auth-token`; the audit log
 * records each reset, and the refusal says where to look.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { StaleTokenError, StorageClient, StorageRequestError } from "../../src/storage/index.js";
import { CLI_PATH, type StorageHandle, startStorage } from "../../src/testkit/index.js";
import { http, startInProcess } from "./helpers.js";

/** What etcd's contrib/lock client sends as `version`: its lease ID. */
const LEASE_ID = 7_587_861_293_385_405_714n;

/** Runs the CLI to completion (at most 20 s) and returns its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fencelock ${args.join(" ")} did not exit`));
    }, 20_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** Writes the seed client's lease ID as `version` through `POST /`, as etcd's contrib/lock client does. */
async function seedWrite(port: number, key: string, version: bigint, auth?: string) {
  return http(port, "POST", "/", {
    headers: { "Content-Type": "application/json", ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
    body: `{"op":"write","key":"${key}","val":"from a seed client","version":${version}}`,
  });
}

test("the README's storage example leaves the demo's key0 alone", () => {
  const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Fenced storage"), readme.indexOf("## lockd"));
  assert.match(section, /"version":4703569812595502727/);
  // A huge version written to key0 would refuse every later `fencelock client` on the default storage.
  assert.doesNotMatch(section, /"key":"key0"|\/v1\/kv\/key0/);
  assert.match(section, /fencelock storage fence reset NAME/);
});

describe("fence reset", { timeout: 90_000 }, () => {
  const servers: StorageHandle[] = [];
  const dirs: string[] = [];
  after(async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test("offline: refused while a server holds the directory; clears a poisoned fence once it is stopped", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fencelock-reset-"));
    dirs.push(dir);
    const storage = await startStorage({ dataDir: dir });
    servers.push(storage);
    const client = new StorageClient({ url: storage.url });
    try {
      assert.equal((await seedWrite(storage.port, "poisoned", LEASE_ID)).status, 200);
      const stale = await client.write("poisoned", "from a fencelock holder", { token: 6n }).catch((e) => e);
      assert.ok(stale instanceof StaleTokenError && stale.maxToken === LEASE_ID);
      // The refusal tells the operator where the recovery is, on both protocols.
      const problem = await http(storage.port, "PUT", "/v1/kv/poisoned", {
        headers: { "Fencing-Token": "6" },
        body: "x",
      });
      assert.equal(problem.status, 409);
      assert.match(String(problem.json?.detail), /fencelock storage fence reset --help/);
      const seed = await seedWrite(storage.port, "poisoned", 6n);
      assert.match(String(seed.json?.err), /fencelock storage fence reset --help/);

      const busy = await cli(["storage", "fence", "reset", "poisoned", "--data", dir]);
      assert.equal(busy.code, 1, busy.err);
      assert.match(busy.err, /a storage server holds it/);
      assert.equal(await client.fence("poisoned"), LEASE_ID, "a refused reset changed the fence");

      await storage.child.stop();
      const reset = await cli(["storage", "fence", "reset", "poisoned", "--data", dir]);
      assert.equal(reset.code, 0, reset.err);
      assert.match(reset.out, new RegExp(`had max ${LEASE_ID}`));
      assert.match(reset.err, /warning: .*stale holder/);

      await storage.restart();
      assert.equal(await client.fence("poisoned"), null);
      assert.deepEqual(await client.write("poisoned", "from a fencelock holder", { token: 6n }), {
        maxToken: 6n,
      });
      const entries = await client.audit({ limit: 1000 });
      const resets = entries.filter((e) => e.op === "reset");
      assert.equal(resets.length, 1);
      const [entry] = resets;
      assert.equal(entry?.fence, "poisoned");
      assert.equal(entry?.previousMax, LEASE_ID);
      assert.equal(entry?.accepted, true);
      assert.match(entry?.reason ?? "", new RegExp(`max ${LEASE_ID} cleared`));
      assert.match(entry?.value ?? "", /offline on .* by .* \(pid \d+\)/);
      // The order of the log: the poisoning write, the refusals, the reset, the accepted write.
      assert.deepEqual(
        entries.map((e) => [e.op, e.accepted]),
        [
          ["write", true],
          ["write", false],
          ["write", false],
          ["write", false],
          ["reset", true],
          ["write", true],
        ],
      );
    } finally {
      client.close();
    }
  });

  test("online: DELETE /v1/fences/{name} only behind --auth-token, through the CLI too", async (t) => {
    const open = await startInProcess(t);
    const refused = await http(open.port, "DELETE", "/v1/fences/key0");
    assert.equal(refused.status, 403);
    assert.equal(refused.headers["content-type"], "application/problem+json");
    assert.equal(refused.json?.code, "ADMIN_DISABLED");

    // The memory store (the only way to reset it is online).
    const guarded = await startInProcess(t, { authToken: "s3cret" });
    assert.equal((await seedWrite(guarded.port, "key0", LEASE_ID, "s3cret")).status, 200);
    assert.equal((await http(guarded.port, "DELETE", "/v1/fences/key0")).status, 401);
    const wrong = await cli([
      "storage",
      "fence",
      "reset",
      "key0",
      "--url",
      guarded.url,
      "--auth-token",
      "nope",
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /UNAUTHORIZED/);
    const ok = await cli([
      "storage",
      "fence",
      "reset",
      "key0",
      "--url",
      guarded.url,
      "--auth-token",
      "s3cret",
    ]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, new RegExp(`had max ${LEASE_ID}`));
    assert.match(ok.err, /warning/);

    const client = new StorageClient({ url: guarded.url, authToken: "s3cret" });
    try {
      assert.equal(await client.fence("key0"), null);
      await client.write("key0", "v", { token: 3n });
      assert.deepEqual(await client.resetFence("key0"), { previousMax: 3n, seq: 4 });
      const resets = (await client.audit()).filter((e) => e.op === "reset");
      assert.deepEqual(
        resets.map((e) => [e.previousMax, e.reason, e.value]),
        [
          [LEASE_ID, `reset by an operator: max ${LEASE_ID} cleared`, resets[0]?.value],
          [3n, "reset by an operator: max 3 cleared", resets[0]?.value],
        ],
      );
      assert.match(resets[0]?.value ?? "", /over HTTP/);
      assert.deepEqual(
        guarded.logs.filter((l) => l.event === "fence-reset").map((l) => l.previousMax),
        [`${LEASE_ID}`, "3"],
      );
      const method = await http(guarded.port, "POST", "/v1/fences/key0", {
        headers: { Authorization: "Bearer s3cret" },
      });
      assert.equal(method.status, 405);
      assert.equal(method.headers.allow, "GET, DELETE");
      const err = await new StorageClient({ url: open.url }).resetFence("x").catch((e) => e);
      assert.ok(err instanceof StorageRequestError && err.code === "ADMIN_DISABLED");
    } finally {
      client.close();
    }
  });

  test("bad invocations exit 2 and change nothing", async () => {
    const cases: [string[], RegExp][] = [
      [["storage", "fence"], /expected "reset NAME"/],
      [["storage", "fence", "reset"], /expected "reset NAME"/],
      [["storage", "fence", "clear", "k"], /expected "reset NAME"/],
      [
        ["storage", "fence", "reset", "k", "--url", "http://127.0.0.1:1", "--data", "/tmp"],
        /exclude each other/,
      ],
      [["storage", "fence", "reset", "k", "--auth-token", "t"], /--auth-token goes with --url/],
      [["storage", "fence", "reset", "k", "--bogus"], /unknown flag --bogus/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => {
      const [args, re] = cases[i] as [string[], RegExp];
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, re, args.join(" "));
    });
    const help = await cli(["storage", "fence", "reset", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /DANGER/);
    // The server's help says what a seed client's "version" really is, and where the way out is.
    const server = await cli(["storage", "--help"]);
    assert.match(
      server.out,
      /seed\s+client's "version" is its LEASE ID: it increases only on one etcd member or one lockd/,
    );
    assert.match(server.out, /never a\s+real fencing token on a multi-member etcd cluster/);
    assert.match(server.out, /fencelock storage fence reset NAME/);
    const missing = await cli(["storage", "fence", "reset", "k", "--data", "/nonexistent/fencelock"]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no storage database/);
  });
});
