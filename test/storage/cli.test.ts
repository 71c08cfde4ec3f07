/**
 * `fencelock storage` flags, and the test kit's `startStorage` (memory, restart on the same port,
 * --allow-unfenced).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { StorageClient, StorageRequestError } from "../../src/storage/index.js";
import { CLI_PATH, startStorage } from "../../src/testkit/index.js";

/** Runs the CLI to completion (at most 15 s) and returns its exit code and output. */
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
    }, 15_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

test("--help prints the flags and exits 0; bad flags exit 2 with a message", async () => {
  const help = await cli(["storage", "--help"]);
  assert.equal(help.code, 0);
  const flags = [
    "--host",
    "--port",
    "--data",
    "--memory",
    "--allow-unfenced",
    "--auth-token",
    "--audit-keep",
  ];
  for (const flag of flags) {
    assert.ok(help.out.includes(flag), flag);
  }
  const bad: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--port", "http"], /--port must be 0\.\.65535/],
    [["--port", "70000"], /--port must be 0\.\.65535/],
    [["--memory", "--data", "/tmp/x"], /exclude each other/],
    [["--synchronous", "sometimes"], /--synchronous must be normal or full/],
    [["--audit-keep", "0"], /--audit-keep must be a whole number of entries >= 1, got 0/],
    [["--audit-keep", "many"], /--audit-keep must be a whole number/],
    [["--audit-keep", "1e3"], /--audit-keep must be a whole number/],
    [["extra"], /Unexpected argument 'extra'/],
  ];
  const results = await Promise.all(bad.map(([args]) => cli(["storage", ...args])));
  results.forEach((r, i) => {
    const [args, message] = bad[i] as [string[], RegExp];
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, message);
  });
});

test("startStorage: --memory, --allow-unfenced, and restart on the same port (memory starts empty)", async (t) => {
  const storage = await startStorage({ memory: true, allowUnfenced: true });
  t.after(() => storage.stop());
  assert.equal(storage.dataDir, undefined);
  const client = new StorageClient({ url: storage.url });
  t.after(() => client.close());
  assert.deepEqual(await client.write("k", "unfenced"), { maxToken: null });
  const firstPid = storage.child.pid;
  await storage.restart();
  assert.notEqual(storage.child.pid, firstPid);
  assert.equal(await client.read("k"), null, "an in-memory store does not survive a restart");
  await storage.stop();
  assert.equal(storage.child.running, false);
});

test("without --allow-unfenced a write needs a token", async (t) => {
  const storage = await startStorage({ memory: true });
  t.after(() => storage.stop());
  const client = new StorageClient({ url: storage.url });
  t.after(() => client.close());
  const err = await client.write("k", "v").catch((e: unknown) => e);
  assert.ok(err instanceof StorageRequestError && err.code === "TOKEN_REQUIRED");
});
