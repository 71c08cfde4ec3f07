/**
 * The PostgreSQL guard against a real PostgreSQL server (the test kit's, started from the installed
 * binaries): the rule, rollback of a stale holder's whole unit of work, concurrent holders under each
 * isolation level, lost connections, a crash of the server, aborts, and bad input that changes nothing.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
  checkFence,
  DatabaseUnavailableError,
  ensureFenceTable,
  type FenceContext,
  FenceTableMissingError,
  fenceMax,
  fenceTableSql,
  GuardAbortedError,
  GuardArgumentError,
  GuardTimeoutError,
  type IsolationLevel,
  RolledBackError,
  resetFence,
  StaleTokenError,
  TransactionConflictError,
  withFence,
} from "../../src/guard/postgres/index.js";
import { type PostgresHandle, startPostgres } from "../../src/testkit/index.js";

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Resolves once `pid`'s backend is waiting for a lock (bounded). */
async function waitingForLock(pool: pg.Pool, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    );
    if ((rows[0] as { n: number }).n > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what}: no backend waited for a lock within 10 s`);
}

const outcome = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe("PostgreSQL guard", () => {
  let server: PostgresHandle;
  let pool: pg.Pool;

  before(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ ...server.pgConfig(), max: 8 });
    // Idle connections break when the server crashes; pg reports that on the pool (as every app must handle).
    pool.on("error", () => {});
    await ensureFenceTable(pool);
    await pool.query("CREATE TABLE counter (name text PRIMARY KEY, n bigint NOT NULL)");
  });

  after(async () => {
    await pool?.end();
    await server?.stop();
  });

  let counters = 0;
  const freshCounter = async () => {
    const name = `c${++counters}`;
    await pool.query("INSERT INTO counter VALUES ($1, 0)", [name]);
    return name;
  };
  const count = async (name: string) =>
    Number((await pool.query("SELECT n FROM counter WHERE name = $1", [name])).rows[0].n);
  const increment = (tx: pg.PoolClient | pg.Client, name: string) =>
    tx.query("UPDATE counter SET n = n + 1 WHERE name = $1", [name]);

  it("applies the rule: first, newer and equal tokens pass; a stale one rolls back the whole unit of work", async () => {
    const c = await freshCounter();
    const fence = `rule-${c}`;
    const value = await withFence(pool, { fence, token: 5n }, async (tx, ctx) => {
      assert.deepEqual([ctx.fence, ctx.token, ctx.signal.aborted], [fence, 5n, false]);
      await increment(tx, c);
      return "done";
    });
    assert.equal(value, "done");
    await withFence(pool, { fence, token: 5n }, (tx) => increment(tx, c));
    await withFence(pool, { fence, token: 4703569812595502727n }, (tx) => increment(tx, c));
    let ran = false;
    const err = await withFence(pool, { fence, token: 4703569812595502726n }, async (tx) => {
      ran = true;
      await increment(tx, c);
    }).catch((e: unknown) => e);
    assert.ok(err instanceof StaleTokenError, String(err));
    assert.deepEqual(
      [err.code, err.token, err.maxToken, err.fence],
      ["STALE_FENCING_TOKEN", 4703569812595502726n, 4703569812595502727n, fence],
    );
    assert.equal(ran, false);
    assert.equal(await count(c), 3);
    assert.equal(await fenceMax(pool, fence), 4703569812595502727n);
  });

  it("rolls back the user's statements and the fence when the function throws", async () => {
    const c = await freshCounter();
    await assert.rejects(
      withFence(pool, { fence: `throws-${c}`, token: 2n }, async (tx) => {
        await increment(tx, c);
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await count(c), 0);
    assert.equal(await fenceMax(pool, `throws-${c}`), null);
  });

  it("a statement that failed and was caught makes COMMIT roll back, reported as RolledBackError", async () => {
    const c = await freshCounter();
    await assert.rejects(
      withFence(pool, { fence: `caught-${c}`, token: 2n }, async (tx) => {
        await increment(tx, c);
        await tx.query("SELECT 1/0").catch(() => {});
      }),
      RolledBackError,
    );
    assert.equal(await count(c), 0);
  });

  it("under READ COMMITTED two holders of one fence serialize on its row: the older token waits, then is refused", async () => {
    const c = await freshCounter();
    const fence = `rc-${c}`;
    const inside = gate();
    const finish = gate();
    // The newer holder (token 7) is inside its transaction, mid read-modify-write.
    const newer = withFence(pool, { fence, token: 7n, isolation: "read committed" }, async (tx) => {
      const { rows } = await tx.query("SELECT n FROM counter WHERE name = $1", [c]);
      inside.open();
      await finish.opened;
      await tx.query("UPDATE counter SET n = $2 WHERE name = $1", [c, BigInt(rows[0].n) + 10n]);
    });
    await inside.opened;
    let olderRan = false;
    const older = outcome(
      withFence(pool, { fence, token: 6n, isolation: "read committed" }, async (tx) => {
        olderRan = true;
        await increment(tx, c);
      }),
    );
    await waitingForLock(pool, "the older holder");
    finish.open();
    await newer;
    const o = await older;
    assert.ok(!o.ok && o.error instanceof StaleTokenError, String(!o.ok && o.error));
    assert.equal(olderRan, false);
    assert.equal(await count(c), 10);

    // The other order: the older token first; the newer waits for it, then both have written.
    const inside2 = gate();
    const finish2 = gate();
    const first = withFence(pool, { fence, token: 8n }, async (tx) => {
      const { rows } = await tx.query("SELECT n FROM counter WHERE name = $1", [c]);
      inside2.open();
      await finish2.opened;
      await tx.query("UPDATE counter SET n = $2 WHERE name = $1", [c, BigInt(rows[0].n) + 1n]);
    });
    await inside2.opened;
    const second = withFence(pool, { fence, token: 9n }, async (tx) => {
      const { rows } = await tx.query("SELECT n FROM counter WHERE name = $1", [c]);
      await tx.query("UPDATE counter SET n = $2 WHERE name = $1", [c, BigInt(rows[0].n) + 1n]);
    });
    await waitingForLock(pool, "the newer holder");
    finish2.open();
    await Promise.all([first, second]);
    assert.equal(await count(c), 12, "no lost update: the second read-modify-write saw the first's result");
    assert.equal(await fenceMax(pool, fence), 9n);
  });

  it("a holder whose token the fence holds already keeps the row locked: a newer holder waits, no lost update", async () => {
    const c = await freshCounter();
    const fence = `same-${c}`;
    await withFence(pool, { fence, token: 5n }, (tx) => increment(tx, c));
    const inside = gate();
    const finish = gate();
    // Token 5 again: the check writes nothing, yet the row stays locked until this unit commits.
    const holder = withFence(pool, { fence, token: 5n }, async (tx) => {
      const { rows } = await tx.query("SELECT n FROM counter WHERE name = $1", [c]);
      inside.open();
      await finish.opened;
      await tx.query("UPDATE counter SET n = $2 WHERE name = $1", [c, BigInt(rows[0].n) + 10n]);
    });
    await inside.opened;
    const newer = withFence(pool, { fence, token: 6n }, async (tx) => {
      const { rows } = await tx.query("SELECT n FROM counter WHERE name = $1", [c]);
      await tx.query("UPDATE counter SET n = $2 WHERE name = $1", [c, BigInt(rows[0].n) + 100n]);
    });
    await waitingForLock(pool, "the newer holder");
    finish.open();
    await Promise.all([holder, newer]);
    assert.equal(await count(c), 111, "the newer holder read what the older one wrote");
    assert.equal(await fenceMax(pool, fence), 6n);
  });

  for (const isolation of ["repeatable read", "serializable"] as IsolationLevel[]) {
    it(`under ${isolation.toUpperCase()} a concurrent holder gets a retryable conflict, never a silent accept`, async () => {
      const c = await freshCounter();
      const fence = `iso-${c}`;
      await withFence(pool, { fence, token: 1n }, () => {});
      const inside = gate();
      const finish = gate();
      const newer = withFence(pool, { fence, token: 3n, isolation }, async (tx) => {
        await increment(tx, c);
        inside.open();
        await finish.opened;
      });
      await inside.opened;
      const older = outcome(withFence(pool, { fence, token: 2n, isolation }, (tx) => increment(tx, c)));
      await waitingForLock(pool, "the second holder");
      finish.open();
      await newer;
      const o = await older;
      assert.ok(!o.ok && o.error instanceof TransactionConflictError, String(!o.ok && o.error));
      assert.equal((o.error as TransactionConflictError).retryable, true);
      assert.equal((o.error as TransactionConflictError).code, "TRANSACTION_CONFLICT");
      // Run again, it meets the newer max.
      await assert.rejects(
        withFence(pool, { fence, token: 2n, isolation }, (tx) => increment(tx, c)),
        StaleTokenError,
      );
      assert.equal(await count(c), 1);
      assert.equal(await fenceMax(pool, fence), 3n);
    });
  }

  it("a backend terminated mid-transaction: DatabaseUnavailableError, nothing written, the pool goes on", async () => {
    const c = await freshCounter();
    const fence = `kill-${c}`;
    const err = await withFence(pool, { fence, token: 4n }, async (tx) => {
      await increment(tx, c);
      const { rows } = await tx.query("SELECT pg_backend_pid() AS pid");
      await pool.query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
      await increment(tx, c);
    }).catch((e: unknown) => e);
    assert.ok(err instanceof DatabaseUnavailableError, String(err));
    assert.equal(err.outcome, "rolled-back");
    assert.equal(await count(c), 0);
    assert.equal(await fenceMax(pool, fence), null);
    await withFence(pool, { fence, token: 4n }, (tx) => increment(tx, c));
    assert.equal(await count(c), 1);
  });

  it("abort and timeout while waiting for the fence row: typed errors, rolled back, the holder unharmed", async () => {
    const c = await freshCounter();
    const fence = `abort-${c}`;
    const inside = gate();
    const finish = gate();
    const holder = withFence(pool, { fence, token: 5n }, async (tx) => {
      await increment(tx, c);
      inside.open();
      await finish.opened;
    });
    await inside.opened;
    const controller = new AbortController();
    const aborted = outcome(
      withFence(pool, { fence, token: 6n, signal: controller.signal }, (tx) => increment(tx, c)),
    );
    await waitingForLock(pool, "the aborted waiter");
    controller.abort(new Error("caller gave up"));
    const a = await aborted;
    assert.ok(!a.ok && a.error instanceof GuardAbortedError, String(!a.ok && a.error));
    await assert.rejects(
      withFence(pool, { fence, token: 6n, timeoutMs: 200 }, (tx) => increment(tx, c)),
      GuardTimeoutError,
    );
    const already = AbortSignal.abort();
    await assert.rejects(
      withFence(pool, { fence, token: 6n, signal: already }, () => {}),
      GuardAbortedError,
    );
    finish.open();
    await holder;
    assert.equal(await count(c), 1);
    assert.equal(await fenceMax(pool, fence), 5n);
    await withFence(pool, { fence, token: 6n }, (tx) => increment(tx, c));
    assert.equal(await count(c), 2);
  });

  it("the context's signal aborts with the transaction, whether read before or only after", async () => {
    const c = await freshCounter();
    const hang = () => new Promise((resolve) => setTimeout(resolve, 2000));
    const first = new AbortController();
    let early: AbortSignal | undefined;
    let context: FenceContext | undefined;
    const err = await withFence(
      pool,
      { fence: `ctx-${c}`, token: 1n, signal: first.signal },
      async (tx, ctx) => {
        early = ctx.signal;
        context = ctx;
        await increment(tx, c);
        first.abort("enough");
        await hang();
      },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof GuardAbortedError, String(err));
    assert.equal(early?.aborted, true);
    assert.equal(early?.reason, err);
    assert.equal(context?.signal.reason, err);
    const second = new AbortController();
    let late: FenceContext | undefined;
    const err2 = await withFence(
      pool,
      { fence: `ctx-${c}`, token: 1n, signal: second.signal },
      async (_tx, ctx) => {
        late = ctx;
        second.abort("enough");
        await hang();
      },
    ).catch((e: unknown) => e);
    assert.ok(err2 instanceof GuardAbortedError, String(err2));
    assert.equal(late?.signal.aborted, true);
    assert.equal(late?.signal.reason, err2);
    assert.equal(await count(c), 0);
  });

  it("works on a plain Client too, one transaction after another", async () => {
    const c = await freshCounter();
    const client = new pg.Client(server.pgConfig());
    await client.connect();
    try {
      const fence = `client-${c}`;
      await Promise.all(
        [1n, 2n, 3n].map((token) =>
          withFence(client, { fence, token }, async (tx) => {
            const { rows } = await tx.query("SELECT n FROM counter WHERE name = $1", [c]);
            await new Promise((r) => setTimeout(r, 10));
            await tx.query("UPDATE counter SET n = $2 WHERE name = $1", [c, BigInt(rows[0].n) + 1n]);
          }),
        ),
      );
      assert.equal(await count(c), 3);
      await assert.rejects(
        withFence(client, { fence, token: 2n }, (tx) => increment(tx, c)),
        StaleTokenError,
      );
      assert.equal(await count(c), 3);
    } finally {
      await client.end();
    }
  });

  it("any fence name reaches the fence row as written (BEGIN and the check share one query string)", async () => {
    const c = await freshCounter();
    const names = [
      `quote'); DROP TABLE counter; -- ${c}`,
      `backslash\\' ${c} \\`,
      `dollar $1 $$ $q$ ${c}`,
      `tag $fencelock$); DROP TABLE counter; -- ${c}`,
      `${c} ends in $fencelock`,
      `unicode é 雪 🔒 ${c}`,
    ];
    // With standard_conforming_strings off a backslash escapes in '...' literals, on a connection of its own.
    const client = new pg.Client(server.pgConfig());
    await client.connect();
    try {
      await client.query("SET standard_conforming_strings = off");
      for (const [i, fence] of names.entries()) {
        const db = i % 2 === 0 ? pool : client;
        await withFence(db, { fence, token: 7n }, (tx) => increment(tx, c));
        await assert.rejects(
          withFence(db, { fence, token: 6n }, (tx) => increment(tx, c)),
          (err: unknown) => err instanceof StaleTokenError && err.fence === fence && err.maxToken === 7n,
        );
        await withFence(client, { fence, token: 8n }, (tx) => increment(tx, c));
        // fenceMax looks the name up as a bound parameter: the same row.
        assert.equal(await fenceMax(pool, fence), 8n, fence);
      }
    } finally {
      await client.end();
    }
    assert.equal(await count(c), 2 * names.length);
  });

  /** A connection that records the first word of each query string it sends. */
  const recording = (client: pg.Client, sent: string[]) => ({
    query: (sql: string, params?: unknown[]) => {
      sent.push(sql.split(/\s/)[0] as string);
      return client.query(sql, params);
    },
    on: client.on.bind(client),
    removeListener: client.removeListener.bind(client),
  });

  it("costs no round trip more than the unguarded transaction once the fence holds the token", async () => {
    const c = await freshCounter();
    const fence = `trips-${c}`;
    const client = new pg.Client(server.pgConfig());
    await client.connect();
    const sent: string[] = [];
    const conn = recording(client, sent);
    const unit = (token: bigint) =>
      withFence(conn, { fence, token }, (tx) =>
        tx.query("UPDATE counter SET n = n + 1 WHERE name = $1", [c]),
      );
    const trips = async (token: bigint) => {
      sent.length = 0;
      await unit(token);
      return [...sent];
    };
    try {
      // The connection's first unit prepares the statements; the fence's first unit inserts its row.
      assert.deepEqual(await trips(5n), ["PREPARE", "UPDATE", "COMMIT"]);
      // The holder's next units: BEGIN and the prepared check in one string, as many round trips as unguarded.
      assert.deepEqual(await trips(5n), ["BEGIN;", "UPDATE", "COMMIT"]);
      assert.deepEqual(await trips(5n), ["BEGIN;", "UPDATE", "COMMIT"]);
      // A new holder's first unit raises the row in the same statement.
      assert.deepEqual(await trips(6n), ["BEGIN;", "UPDATE", "COMMIT"]);
      // A stale one learns the newer max from the check itself.
      sent.length = 0;
      await assert.rejects(unit(5n), (err: unknown) => err instanceof StaleTokenError && err.maxToken === 6n);
      assert.deepEqual(sent, ["BEGIN;", "ROLLBACK"]);
      // Someone dropped the connection's prepared statements: the check prepares them again.
      await client.query("DEALLOCATE ALL");
      assert.deepEqual(await trips(6n), ["BEGIN;", "ROLLBACK", "PREPARE", "UPDATE", "COMMIT"]);
      // The fence was reset behind this process's back: the row is inserted again.
      await resetFence(pool, fence);
      assert.deepEqual(await trips(6n), ["BEGIN;", "INSERT", "UPDATE", "COMMIT"]);
      // Another process raised it past this one's next token: refused, the max read in a statement of its own.
      await pool.query("UPDATE fencelock_fences SET max_token = 9 WHERE name = $1", [fence]);
      sent.length = 0;
      await assert.rejects(unit(7n), (err: unknown) => err instanceof StaleTokenError && err.maxToken === 9n);
      assert.deepEqual(sent, ["BEGIN;", "SELECT", "ROLLBACK"]);
      // And this process now knows: its next stale unit costs nothing more.
      sent.length = 0;
      await assert.rejects(unit(8n), StaleTokenError);
      assert.deepEqual(sent, ["BEGIN;", "ROLLBACK"]);
    } finally {
      await client.end();
    }
    assert.equal(await count(c), 6);
    assert.equal(await fenceMax(pool, fence), 9n);
  });

  it("a connection whose session moves between server connections (a transaction pooler) falls back to the inline check", async () => {
    const c = await freshCounter();
    const fence = `pooler-${c}`;
    const backends = [new pg.Client(server.pgConfig()), new pg.Client(server.pgConfig())];
    await Promise.all(backends.map((b) => b.connect()));
    // Like a transaction pooler: each transaction goes to the next server connection.
    let turn = 0;
    let current = backends[0] as pg.Client;
    const sent: string[] = [];
    const conn = {
      query: (sql: string, params?: unknown[]) => {
        if (/^(PREPARE|BEGIN)/.test(sql)) current = backends[turn++ % backends.length] as pg.Client;
        sent.push(sql.split(/\s/)[0] as string);
        return current.query(sql, params);
      },
      on: () => {},
      removeListener: () => {},
    };
    try {
      for (let i = 0; i < 4; i++) {
        await withFence(conn, { fence, token: 3n }, (tx) =>
          tx.query("UPDATE counter SET n = n + 1 WHERE name = $1", [c]),
        );
      }
      await assert.rejects(
        withFence(conn, { fence, token: 2n }, () => {}),
        StaleTokenError,
      );
    } finally {
      await Promise.all(backends.map((b) => b.end()));
    }
    assert.equal(await count(c), 4);
    // Once it has seen the statement come and go, it sends the one-statement check (BEGIN; INSERT ...),
    // which reads the max that beat a stale token in a statement of its own.
    assert.deepEqual(sent.slice(-3), ["BEGIN;", "SELECT", "ROLLBACK"]);
    assert.ok(sent.filter((w) => w === "PREPARE").length <= 2, sent.join(" "));
  });

  it("checkFence guards a transaction the caller opened, through a plain query function", async () => {
    const c = await freshCounter();
    const fence = `neutral-${c}`;
    const tx = await pool.connect();
    const query = (sql: string, params: unknown[]) => tx.query(sql, params);
    try {
      await tx.query("BEGIN");
      await checkFence(query, { fence, token: 10n });
      await increment(tx, c);
      await tx.query("COMMIT");
      await tx.query("BEGIN");
      await assert.rejects(checkFence(query, { fence, token: 9n }), StaleTokenError);
      await tx.query("ROLLBACK");
      // A query function that resolves to an array of rows (postgres.js style) works too.
      await tx.query("BEGIN");
      await checkFence(async (sql, params) => (await tx.query(sql, params)).rows, { fence, token: 11n });
      await tx.query("COMMIT");
    } finally {
      tx.release();
    }
    assert.equal(await count(c), 1);
    assert.equal(await fenceMax(pool, fence), 11n);
  });

  it("refuses bad input with GuardArgumentError before sending anything", async () => {
    const c = await freshCounter();
    const run = (args: object) => withFence(pool, args as never, (tx) => increment(tx, c));
    const bad: [string, object][] = [
      ["number token", { fence: "bad", token: 5 }],
      ["unsafe number token", { fence: "bad", token: 2 ** 60 }],
      ["string token", { fence: "bad", token: "5" }],
      ["negative token", { fence: "bad", token: -3n }],
      ["zero token", { fence: "bad", token: 0n }],
      ["token above int64", { fence: "bad", token: 2n ** 63n }],
      ["empty fence", { fence: "", token: 1n }],
      ["oversize fence", { fence: "é".repeat(513), token: 1n }],
      ["NUL in fence", { fence: "a\0b", token: 1n }],
      ["bad table", { fence: "bad", token: 1n, table: 'fences"; DROP TABLE counter; --' }],
      ["bad isolation", { fence: "bad", token: 1n, isolation: "read uncommitted" }],
      ["bad timeout", { fence: "bad", token: 1n, timeoutMs: -1 }],
    ];
    for (const [what, args] of bad) await assert.rejects(run(args), GuardArgumentError, what);
    await assert.rejects(
      withFence({} as never, { fence: "bad", token: 1n }, () => {}),
      GuardArgumentError,
    );
    await assert.rejects(
      withFence(pool, { fence: "bad", token: 1n }, undefined as never),
      GuardArgumentError,
    );
    assert.equal(await count(c), 0);
    assert.equal(await fenceMax(pool, "bad"), null);
  });

  it("a fence table that does not exist: FenceTableMissingError saying how to create it, nothing written", async () => {
    const c = await freshCounter();
    const err = await withFence(pool, { fence: "f", token: 1n, table: "missing_fences" }, (tx) =>
      increment(tx, c),
    ).catch((e: unknown) => e);
    assert.ok(err instanceof FenceTableMissingError, String(err));
    assert.match(err.message, /ensureFenceTable/);
    assert.equal(await count(c), 0);
    await assert.rejects(fenceMax(pool, "f", { table: "missing_fences" }), FenceTableMissingError);
    await assert.rejects(resetFence(pool, "f", { table: "missing_fences" }), FenceTableMissingError);
  });

  it("a closed pool: DatabaseUnavailableError", async () => {
    const closed = new pg.Pool(server.pgConfig());
    await closed.end();
    const err = await withFence(closed, { fence: "closed", token: 1n }, () => {}).catch((e: unknown) => e);
    assert.ok(err instanceof DatabaseUnavailableError, String(err));
    assert.equal(err.code, "DATABASE_UNAVAILABLE");
  });

  it("resetFence forgets a fence and says what it held", async () => {
    const fence = "poisoned";
    await withFence(pool, { fence, token: 6748436257929267596n }, () => {});
    await assert.rejects(
      withFence(pool, { fence, token: 6n }, () => {}),
      StaleTokenError,
    );
    assert.equal(await resetFence(pool, fence), 6748436257929267596n);
    assert.equal(await resetFence(pool, fence), null);
    await withFence(pool, { fence, token: 6n }, () => {});
    assert.equal(await fenceMax(pool, fence), 6n);
  });

  it("ships the table as a plain .sql file equal to what ensureFenceTable runs, and ensureFenceTable is idempotent", async () => {
    const shipped = readFileSync(new URL("../../../sql/postgres-fences.sql", import.meta.url), "utf8");
    assert.equal(shipped.replace(/^--.*\n/gm, ""), fenceTableSql());
    await Promise.all([
      ensureFenceTable(pool),
      ensureFenceTable(pool),
      ensureFenceTable(pool, { table: "public.other_fences" }),
    ]);
    await withFence(pool, { fence: "other", token: 3n, table: "public.other_fences" }, () => {});
    assert.equal(await fenceMax(pool, "other", { table: "public.other_fences" }), 3n);
    assert.equal(await fenceMax(pool, "other"), null);
  });

  it("survives a crash of the server: a transaction open at the crash is lost, committed fences stay", async () => {
    const c = await freshCounter();
    const fence = `crash-${c}`;
    await withFence(pool, { fence, token: 20n }, (tx) => increment(tx, c));
    const inside = gate();
    const open = outcome(
      withFence(pool, { fence, token: 21n }, async (tx) => {
        await increment(tx, c);
        inside.open();
        await tx.query("SELECT pg_sleep(30)");
      }),
    );
    await inside.opened;
    await server.crash();
    const o = await open;
    assert.ok(!o.ok && o.error instanceof DatabaseUnavailableError, String(!o.ok && o.error));
    await server.start();
    assert.equal(await count(c), 1);
    assert.equal(await fenceMax(pool, fence), 20n);
    await assert.rejects(
      withFence(pool, { fence, token: 19n }, () => {}),
      StaleTokenError,
    );
  });
});
