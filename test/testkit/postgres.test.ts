/**
 * The PostgreSQL launcher against the installed server: queries through node-postgres, a crash that
 * keeps committed rows and loses uncommitted ones, a stop that leaves no process and no directory, and
 * two servers side by side.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { type PostgresHandle, startPostgres } from "../../src/testkit/index.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function query(server: PostgresHandle, sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client(server.pgConfig());
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

// Two servers started side by side serve every test: initdb is the slow part.
let a: PostgresHandle;
let b: PostgresHandle;
before(async () => {
  const started = await Promise.allSettled([
    startPostgres(),
    startPostgres({ settings: { max_connections: 37 } }),
  ]);
  const servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  if (servers.length < 2) {
    await Promise.all(servers.map((s) => s.stop()));
    throw started.find((s) => s.status === "rejected")?.reason;
  }
  [a, b] = servers as [PostgresHandle, PostgresHandle];
});
after(() => Promise.all([a?.stop(), b?.stop()]));

test("two servers at once, each on its own port, with the caller's settings", async () => {
  assert.notEqual(a.port, b.port);
  assert.equal(a.connectionString, `postgresql://fencelock@127.0.0.1:${a.port}/postgres`);
  const viaString = new pg.Client({ connectionString: b.connectionString });
  await viaString.connect();
  try {
    const row = (await viaString.query("SELECT current_user AS u, current_setting('max_connections') AS m"))
      .rows[0];
    assert.deepEqual(row, { u: "fencelock", m: "37" });
  } finally {
    await viaString.end();
  }
  const port = (await query(a, "SELECT current_setting('port') AS p, current_setting('fsync') AS f")).rows[0];
  assert.deepEqual(port, { p: String(a.port), f: "off" });
});

test("crash() loses only uncommitted work: start() recovers every committed row, same port", async () => {
  await query(a, "CREATE TABLE t (id int PRIMARY KEY, v text)");
  await query(a, "INSERT INTO t VALUES (1, 'committed')");
  const open = new pg.Client(a.pgConfig());
  open.on("error", () => {}); // The crash breaks its connection.
  await open.connect();
  await open.query("BEGIN");
  await open.query("INSERT INTO t VALUES (2, 'never committed')");

  const before = a.child.pid;
  await a.crash();
  assert.equal(alive(before), false, "the postmaster is gone after crash()");
  await assert.rejects(query(a, "SELECT 1"), "nothing answers while crashed");
  await open.end().catch(() => {});

  await a.start();
  assert.notEqual(a.child.pid, before);
  assert.ok(
    a.child.recent.some((l) => /not properly shut down|redo/.test(l)),
    "it ran crash recovery",
  );
  const rows = (await query(a, "SELECT id, v FROM t ORDER BY id")).rows;
  assert.deepEqual(rows, [{ id: 1, v: "committed" }]);
});

test("stop() ends the postmaster despite an open connection, removes the data, and can be called twice", async () => {
  const open = new pg.Client(b.pgConfig());
  open.on("error", () => {}); // The shutdown ends its connection.
  await open.connect();
  await open.query("BEGIN");
  const pid = b.child.pid;
  const temp = dirname(b.dataDir);
  assert.ok(existsSync(b.dataDir));
  await b[Symbol.asyncDispose]();
  await open.end().catch(() => {});
  assert.equal(alive(pid), false);
  assert.equal(existsSync(temp), false);
  await Promise.all([b.stop(), b.stop()]);
  await assert.rejects(b.start(), /stopped/);
});

test("a setting the launcher owns, or a malformed one, is refused before anything starts", async () => {
  const bad: Record<string, string | number>[] = [{ port: 5432 }, { "x; rm": "1" }, { work_mem: Number.NaN }];
  for (const settings of bad) {
    const result = await startPostgres({ settings }).catch((err: unknown) => err);
    if (!(result instanceof TypeError)) {
      await (result as Partial<PostgresHandle>).stop?.();
      assert.fail(`${JSON.stringify(settings)} was not refused: ${String(result)}`);
    }
  }
});
