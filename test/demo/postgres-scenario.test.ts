// The article's scenarios with PostgreSQL as the resource: real lockd, real PostgreSQL, real client
// processes. The outcome is checked against the database's own state, read over a separate connection.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { runScenario, type ScenarioResult } from "../../src/demo/index.js";
import { fenceMax } from "../../src/guard/postgres/index.js";
import {
  type LockdInstance,
  type PostgresHandle,
  startLockd,
  startPostgres,
} from "../../src/testkit/index.js";

function acquiredToken(r: ScenarioResult, actor: "client 1" | "client 2"): bigint {
  const e = r.events.find((x) => x.actor === actor && x.kind === "acquired");
  assert.ok(e && typeof e.token === "bigint", `${actor} reported its token`);
  return e.token;
}

describe("demo scenarios with PostgreSQL as the resource", () => {
  let lockd: LockdInstance | undefined;
  let server: PostgresHandle | undefined;
  let pool: pg.Pool;
  let results: { unsafe: ScenarioResult; fenced: ScenarioResult } | undefined;

  before(async () => {
    [lockd, server] = await Promise.all([startLockd({ memory: true }), startPostgres()]);
    pool = new pg.Pool(server.pgConfig());
    const common = {
      endpoints: lockd.endpoints,
      lockServiceName: "lockd",
      resource: { kind: "postgres" as const, url: server.connectionString },
    };
    const [unsafe, fenced] = await Promise.all([
      runScenario({ ...common, scenario: "unsafe", lockName: "/lock-unsafe", key: "key-unsafe" }),
      runScenario({ ...common, scenario: "fenced", lockName: "/lock-fenced", key: "key-fenced" }),
    ]);
    results = { unsafe, fenced };
  });

  after(async () => {
    await pool?.end();
    await Promise.allSettled([lockd?.stop(), server?.stop()]);
  });

  const value = async (key: string) =>
    (await pool.query("SELECT val FROM fencelock_demo WHERE key = $1", [key])).rows[0]?.val ?? null;

  test("unsafe: without the guard client 1's late write overwrites client 2's", async () => {
    assert.ok(results);
    const r = results.unsafe;
    assert.equal(await value("key-unsafe"), "value from client 1");
    assert.equal(await fenceMax(pool, "key-unsafe"), null, "no guard, no fence");
    assert.deepEqual(r.exitCodes, { client1: 0, client2: 0 });
    assert.equal(r.verdict.correct, false);
  });

  test("fenced: PostgreSQL refuses client 1's late write; client 2's value and token stand", async () => {
    assert.ok(results);
    const r = results.fenced;
    const t1 = acquiredToken(r, "client 1");
    const t2 = acquiredToken(r, "client 2");
    assert.ok(t1 < t2);
    assert.equal(await value("key-fenced"), "value from client 2");
    assert.equal(await fenceMax(pool, "key-fenced"), t2);
    assert.deepEqual(r.exitCodes, { client1: 3, client2: 0 });
    assert.equal(r.finalValue, "value from client 2");
    assert.equal(r.verdict.correct, true);
    const refused = r.events.find((e) => e.actor === "client 1" && e.kind === "refused");
    assert.deepEqual([refused?.token, refused?.maxToken], [t1, t2]);
    assert.ok(
      r.events.some((e) => e.actor === "storage" && e.kind === "rejected" && /PostgreSQL/.test(e.what)),
    );
  });
});
