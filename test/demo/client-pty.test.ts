// `fencelock client 1` driven through a pseudo-terminal (util-linux `script`) exactly as a person
// would: it takes the lock and stops in a raw, synchronous read of the terminal; `fencelock client 2`
// runs in between; then a key is pressed, and client 1's write is refused (exit code 3).
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { StorageClient } from "../../src/storage/index.js";
import {
  CLI_PATH,
  type LockdInstance,
  type StorageHandle,
  startLockd,
  startStorage,
} from "../../src/testkit/index.js";

const run = promisify(execFile);

/** Collects a child's output and resolves when it contains `text` (rejects after `timeoutMs`). */
function output(proc: ChildProcess): {
  text: () => string;
  waitFor: (text: string, timeoutMs: number) => Promise<void>;
} {
  let buf = "";
  const waiters = new Set<() => void>();
  proc.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    for (const w of waiters) w();
  });
  return {
    text: () => buf,
    waitFor: (text, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!buf.includes(text)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no "${text}" within ${timeoutMs} ms; output so far:\n${buf}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

function exitCode(proc: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (proc.exitCode !== null) {
      resolve(proc.exitCode);
      return;
    }
    const timer = setTimeout(() => reject(new Error(`no exit within ${timeoutMs} ms`)), timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe("fencelock client 1 in a terminal, by hand", () => {
  let lockd: LockdInstance | undefined;
  let storage: StorageHandle | undefined;
  let terminal: ChildProcess | undefined;

  before(async () => {
    [lockd, storage] = await Promise.all([startLockd({ memory: true }), startStorage({ memory: true })]);
  });
  after(async () => {
    terminal?.kill("SIGKILL");
    await Promise.allSettled([lockd?.stop(), storage?.stop()]);
  });

  test("keypress pause, client 2 in between, the key, the refusal and exit code 3", async () => {
    assert.ok(lockd && storage);
    const flags = ["--endpoints", lockd.endpoint, "--storage", storage.url, "--ttl", "2"];
    const command = [process.execPath, CLI_PATH, "client", "1", ...flags].map((a) => `'${a}'`).join(" ");
    // -e: script exits with the client's exit code; -f: flush output as it comes.
    terminal = spawn("script", ["-qefc", command, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    const client1 = output(terminal);
    await client1.waitFor("then hit any key...", 30_000);
    const token1 = /acquired lock \/lock with fencing token (\d+)/.exec(client1.text())?.[1];
    assert.ok(token1, "client 1 printed its token");

    // Client 2 waits until client 1's lease expires: client 1 is stopped, keep-alives and all.
    const client2 = await run(process.execPath, [CLI_PATH, "client", "2", ...flags], { timeout: 30_000 });
    const token2 = /acquired lock \/lock with fencing token (\d+)/.exec(client2.stdout)?.[1];
    assert.ok(token2, "client 2 printed its token");
    assert.match(client2.stdout, /write accepted by the storage/);
    assert.ok(BigInt(token1) < BigInt(token2));
    assert.doesNotMatch(client1.text(), /resumed/, "client 1 is still stopped");

    terminal.stdin?.write("x");
    assert.equal(await exitCode(terminal, 30_000), 3);
    const text = client1.text();
    assert.match(text, /resumed after \d+\.\d\d s \(key pressed\)/);
    assert.match(
      text,
      new RegExp(`write refused by the storage as stale: stale fencing token ${token1} < max ${token2}`),
    );
    assert.match(text, /exits with code 3 \(write refused as stale\)/);

    const check = new StorageClient({ url: storage.url });
    try {
      assert.equal((await check.read("key0"))?.toString(), "value from client 2");
      const writes = (await check.audit()).filter((e) => e.op === "write");
      assert.deepEqual(
        writes.map((w) => [w.token, w.accepted]),
        [
          [BigInt(token2), true],
          [BigInt(token1), false],
        ],
      );
    } finally {
      check.close();
    }
  });
});
