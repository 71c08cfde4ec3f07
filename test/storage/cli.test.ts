/**
 * `fencelock storage` flags, and the test kit's `startStorage` (memory, restart on the same port,
 * --allow-unfenced).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StorageClient, StorageRequestError } from "../../src/storage/index.js";
import { CLI_PATH, launch, listeningLine, startStorage } from "../../src/testkit/index.js";
import { http } from "./helpers.js";

/** Runs the CLI to completion (at most 15 s) and returns its exit code and output. */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
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
    "--listen",
    "--host",
    "--port",
    "--sync",
    "--data",
    "--memory",
    "--allow-unfenced",
    "--auth-token",
    "--auth-token-file",
    "FENCELOCK_STORAGE_TOKEN",
    "--audit-keep",
  ];
  for (const flag of flags) {
    assert.ok(help.out.includes(flag), flag);
  }
  const bad: [string[], RegExp][] = [
    [["--bogus"], /unknown flag --bogus/],
    [["--memroy"], /unknown flag --memroy; did you mean --memory\?/],
    [["--listen", "127.0.0.1"], /--listen must be HOST:PORT/],
    [["--listen", "127.0.0.1:1", "--port", "2"], /not both/],
    [["--memory", "--sync", "full"], /--memory keeps nothing on disk/],
    [["--sync", "full", "--synchronous", "full"], /alias/],
    [["--port", "http"], /--port must be 0\.\.65535/],
    [["--port", "70000"], /--port must be 0\.\.65535/],
    [["--memory", "--data", "/tmp/x"], /exclude each other/],
    [["--synchronous", "sometimes"], /--sync must be normal or full/],
    [["--audit-keep", "0"], /--audit-keep must be a whole number of entries >= 1, got 0/],
    [["--audit-keep", "many"], /--audit-keep must be a whole number/],
    [["--audit-keep", "1e3"], /--audit-keep must be a whole number/],
    [["extra"], /Unexpected argument 'extra'/],
    [["--auth-token", "a", "--auth-token-file", "/dev/null"], /exclude each other/],
    [["--auth-token-file", "/nonexistent/token"], /cannot read --auth-token-file/],
    [["--auth-token-file", "/dev/null"], /--auth-token-file \/dev\/null: the token is empty/],
    [["--auth-token", ""], /--auth-token: the token is empty/],
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

test("the token from --auth-token-file or FENCELOCK_STORAGE_TOKEN stays off the command line; --auth-token warns", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "fencelock-token-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "token");
  writeFileSync(file, "from-file\n", { mode: 0o600 });
  const env = { ...process.env };
  delete env.FENCELOCK_STORAGE_TOKEN;
  const cases = [
    { name: "file", args: ["--auth-token-file", file], env, token: "from-file", warns: false },
    {
      name: "environment",
      args: [],
      env: { ...env, FENCELOCK_STORAGE_TOKEN: "from-env" },
      token: "from-env",
      warns: false,
    },
    { name: "flag", args: ["--auth-token", "from-flag"], env, token: "from-flag", warns: true },
  ];
  for (const c of cases) {
    const server = await launch({
      name: `storage-${c.name}`,
      command: process.execPath,
      args: [CLI_PATH, "storage", "--memory", "--port", "0", ...c.args],
      env: c.env,
      readyLine: listeningLine,
      timeoutMs: 20_000,
    });
    t.after(() => server.stop());
    const port = server.ready.port;
    const cmdline = readFileSync(`/proc/${server.pid}/cmdline`, "utf8");
    assert.equal(cmdline.includes(c.token), c.warns, `${c.name}: the token on the command line`);
    const none = await http(port, "GET", "/v1/fences/f");
    assert.equal(none.status, 401, c.name);
    const ok = await http(port, "GET", "/v1/fences/f", { headers: { Authorization: `Bearer ${c.token}` } });
    assert.equal(ok.status, 200, c.name);
    await server.stop();
    // stderr is read apart from stdout: give the warning line time to arrive.
    const warned = () => server.recent.some((l) => l.includes("warning: a token given with --auth-token"));
    for (let i = 0; i < 40 && c.warns && !warned(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(warned(), c.warns, `${c.name}: the warning`);
  }
});
