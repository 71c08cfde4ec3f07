// `fencelock client` on bad input and with no lock service: clear messages, the documented exit codes.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, test } from "node:test";
import { run } from "../../src/cli/commands/client.js";
import { eventFromJson } from "../../src/demo/index.js";
import { CLI_PATH, freePort } from "../../src/testkit/index.js";

function client(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_PATH, "client", ...args],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("fencelock client, failures", () => {
  test("bad flags: a message naming the flag, exit code 2, nothing else done", async (t) => {
    const errors = t.mock.method(console, "error", () => {});
    const logs = t.mock.method(console, "log", () => {});
    const stdout = t.mock.method(process.stdout, "write", () => true);
    const cases = [
      [["3"], /give the client number, 1 or 2 \(got 3\)/],
      [["1", "--pause", "forever"], /bad pause "forever"/],
      [["2", "--ttl", "1.5"], /--ttl must be whole seconds/],
      [["2", "--endpoints", "http://x"], /--endpoints must be host:port/],
      [["2", "--storage", "ftp://x"], /--storage must be an http:\/\/ URL/],
      [["2", "--bogus"], /unknown flag --bogus/],
      [["2", "--ttll", "3"], /unknown flag --ttll; did you mean --ttl\?/],
    ] as const;
    for (const [args, message] of cases) {
      errors.mock.resetCalls();
      assert.equal(await run([...args]), 2, args.join(" "));
      assert.match(String(errors.mock.calls[0]?.arguments[0]), message);
    }
    assert.equal(logs.mock.callCount(), 0);
    assert.equal(stdout.mock.callCount(), 0, "nothing started, nothing reported");
  });

  test("no lock service: an error event and exit code 1; FENCELOCK_EVENTS=json gives JSON lines", async () => {
    const port = await freePort();
    const r = await client(["2", "--endpoints", `127.0.0.1:${port}`, "--timeout", "2"], {
      FENCELOCK_EVENTS: "json",
    });
    assert.equal(r.code, 1);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => eventFromJson(l));
    assert.deepEqual(
      events.map((e) => e?.kind),
      ["start", "error", "exit"],
    );
    assert.match(
      events[1]?.what ?? "",
      new RegExp(`failed to reach the lock service at 127\\.0\\.0\\.1:${port}`),
    );
    assert.equal(events[2]?.exitCode, 1);
  });
});
