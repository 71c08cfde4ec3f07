/**
 * `fencelock fence show|reset` as an operator runs it: the real CLI process against a real SQLite file and
 * a real PostgreSQL server, a fence poisoned by a lease ID, its reset with the warning, and bad flags.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import pg from "pg";
import * as pgGuard from "../../src/guard/postgres/index.js";
import * as sqliteGuard from "../../src/guard/sqlite/index.js";
import {
  CLI_PATH,
  type PostgresHandle,
  startPostgres,
  type TempDir,
  tempDir,
} from "../../src/testkit/index.js";

const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_PATH, "fence", ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

const LEASE_ID = 6748436257929267596n;

describe("fencelock fence", () => {
  let dir: TempDir;
  let server: PostgresHandle;
  let pool: pg.Pool;
  let file: string;

  before(async () => {
    [dir, server] = await Promise.all([tempDir("fence-cli"), startPostgres()]);
    file = join(dir.path, "app.sqlite");
    pool = new pg.Pool(server.pgConfig());
    pool.on("error", () => {});
    await pgGuard.ensureFenceTable(pool);
    await pgGuard.withFence(pool, { fence: "key0", token: LEASE_ID }, () => {});
    const db = new Database(file);
    sqliteGuard.ensureFenceTable(db);
    sqliteGuard.withFence(db, { fence: "key0", token: LEASE_ID }, () => {});
    db.close();
  });

  after(async () => {
    await pool?.end();
    await server?.stop();
    await dir?.remove();
  });

  for (const kind of ["sqlite", "postgres"] as const) {
    it(`shows and resets a poisoned fence in ${kind}, with a warning`, async () => {
      const where = kind === "sqlite" ? ["--sqlite", file] : ["--postgres", server.connectionString];
      const shown = await cli("show", "key0", ...where);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`max token ${LEASE_ID}`));
      const reset = await cli("reset", "key0", ...where);
      assert.equal(reset.code, 0, reset.stderr);
      assert.match(reset.stdout, new RegExp(`its max token was ${LEASE_ID}`));
      assert.match(reset.stderr, /warning: .*stale holder's late write is accepted again/);
      const max =
        kind === "sqlite"
          ? (() => {
              const db = new Database(file);
              try {
                return sqliteGuard.fenceMax(db, "key0");
              } finally {
                db.close();
              }
            })()
          : await pgGuard.fenceMax(pool, "key0");
      assert.equal(max, null);
      const again = await cli("reset", "key0", ...where);
      assert.match(again.stdout, /had no token; nothing to reset/);
    });
  }

  it("refuses bad flags with exit code 2 and reports a missing database or table with exit code 1", async () => {
    for (const args of [
      [],
      ["drop", "key0", "--sqlite", file],
      ["show", "--sqlite", file],
      ["show", "key0"],
      ["show", "key0", "--sqlite", file, "--postgres", server.connectionString],
      ["show", "", "--sqlite", file],
      ["show", "key0", "--sqlite", file, "--table", "x;drop"],
      ["show", "key0", "--sqlite", file, "--bogus"],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    const missing = await cli("show", "key0", "--sqlite", join(dir.path, "nope.sqlite"));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /unable to open database file/);
    const noTable = await cli("show", "key0", "--postgres", server.connectionString, "--table", "other");
    assert.equal(noTable.code, 1);
    assert.match(noTable.stderr, /has no fence table other/);
  });
});
