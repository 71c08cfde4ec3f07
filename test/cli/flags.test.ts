/**
 * One flag vocabulary across the commands: the shared parsers (pure), and the CLI as a user meets it
 * (`--version`, did-you-mean, durations, output paths checked before a run starts, exit codes in --help).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import {
  flagError,
  parseDuration,
  parseFlags,
  parseListen,
  parseTtl,
  unwritablePath,
} from "../../src/cli/flags.js";
import { CLI_PATH } from "../../src/testkit/index.js";

const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_PATH, ...args], { timeout: 30_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, out: x.stdout ?? "", err: x.stderr ?? "" };
  }
}

describe("the shared flag parsers", () => {
  it("durations: 500ms, 3s, 1.5s, 2m, 1h, bare seconds; bounds and junk refused", () => {
    assert.deepEqual(
      ["500ms", "3s", "1.5s", "2m", "1h", "60"].map((t) => parseDuration(t)),
      [500, 3000, 1500, 120_000, 3_600_000, 60_000],
    );
    for (const bad of ["", "soon", "-1s", "3 s", "1e3", "2d"])
      assert.equal(parseDuration(bad), undefined, bad);
    assert.equal(parseDuration("500ms", 1000), undefined);
    assert.equal(parseDuration("2h", 0, 3_600_000), undefined);
  });

  it("TTLs are whole seconds, written 2 or 2s", () => {
    assert.deepEqual([parseTtl("2", 60), parseTtl("2s", 60), parseTtl("1m", 60)], [2, 2, 60]);
    for (const bad of ["1.5s", "500ms", "0", "61", "x"]) assert.equal(parseTtl(bad, 60), undefined, bad);
  });

  it("--listen HOST:PORT, IPv6 in brackets", () => {
    assert.deepEqual(parseListen("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
    assert.deepEqual(parseListen("[::1]:2379"), { host: "::1", port: 2379 });
    for (const bad of ["127.0.0.1", ":80", "h:70000", "h:port"])
      assert.equal(parseListen(bad), undefined, bad);
  });

  it("a mistyped flag gets the nearest real one; a far one gets none", () => {
    const options = {
      ttl: { type: "string" },
      timeout: { type: "string" },
      memory: { type: "boolean" },
    } as const;
    const message = (args: string[]) => {
      try {
        parseFlags({ args, options, strict: true });
        return "";
      } catch (err) {
        return (err as Error).message;
      }
    };
    assert.equal(message(["--ttll", "3"]), "unknown flag --ttll; did you mean --ttl?");
    assert.equal(message(["--memroy"]), "unknown flag --memroy; did you mean --memory?");
    assert.equal(message(["--zebra"]), "unknown flag --zebra");
    assert.equal(flagError(new Error("other"), options), "other");
  });

  it("an output path is checked before a run: missing directory, a directory, writable", () => {
    assert.match(unwritablePath("/nonexistent-dir/x.html") ?? "", /does not exist/);
    assert.match(unwritablePath(tmpdir()) ?? "", /is a directory/);
    assert.equal(unwritablePath(`${tmpdir()}/fencelock-x.html`), undefined);
  });
});

describe("the CLI's flags", () => {
  it("fencelock --version prints the package's version", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));
    const r = await cli("--version");
    assert.equal(r.code, 0);
    assert.equal(r.out.trim(), `fencelock ${pkg.version}`);
  });

  it("bad output paths and mistyped flags stop a command before it starts, with exit code 2", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["demo", "--html", "/nonexistent-dir/x.html"],
        /--html \/nonexistent-dir\/x\.html: the directory .* does not exist/,
      ],
      [["torture", "--report", "/nonexistent-dir/r.json"], /--report .*does not exist/],
      [["torture", "--html", tmpdir()], /is a directory/],
      [["demo", "--scenari", "fenced"], /did you mean --scenario\?/],
      [["torture", "--duraton", "5s"], /did you mean --duration\?/],
      [["client", "2", "--timeout", "soon"], /--timeout must be a duration/],
      [["demo", "--ttl", "1.5s"], /--ttl must be whole seconds/],
      [["lockd", "--memory", "--sync", "full"], /--memory keeps nothing on disk/],
      [["lockd", "--listn", "127.0.0.1:0"], /did you mean --listen\?/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    results.forEach((r, i) => {
      const [args, re] = cases[i] as [string[], RegExp];
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, re, args.join(" "));
    });
    // lock and elect keep timeout(1)'s codes, so a script can tell them from the command's own: 125.
    const lock = await cli("lock", "x", "--tll", "3", "--", "true");
    assert.equal(lock.code, 125);
    assert.match(lock.err, /did you mean --ttl\?/);
  });

  it("every command's --help lists its exit codes", async () => {
    const commands = ["demo", "client", "storage", "lockd", "cluster", "torture", "fence", "lock", "elect"];
    const helps = await Promise.all(commands.map((c) => cli(c, "--help")));
    helps.forEach((h, i) => {
      assert.equal(h.code, 0, commands[i]);
      assert.match(h.out, /exit codes?:/i, `${commands[i]} --help names its exit codes`);
    });
  });
});
