/**
 * Where a demo client writes: fencelock's storage server over HTTP, or the user's own kind of database,
 * PostgreSQL, behind the fencing guard. Either refuses a stale token with an error whose `code` is
 * `STALE_FENCING_TOKEN` and that carries the bigint `token` and `maxToken`.
 */
import { SeedStorageClient, StorageClient } from "../storage/index.js";

/** One place the client writes its value to. */
export interface WriteTarget {
  /** For messages: "the storage" or "PostgreSQL". */
  readonly label: string;
  /** Writes `value` to `key`, fenced with `token` when given. Rejects with the target's typed errors. */
  write(key: string, value: string, token: bigint | undefined): Promise<void>;
  /** Removes `key`'s value (not its fence), where the target can. */
  clear?(key: string): Promise<void>;
  /** Reads `key` back: its value, or `null`. */
  read(key: string): Promise<string | null>;
  close(): Promise<void>;
}

/** The demo's table in PostgreSQL: one row per key. */
export const DEMO_TABLE = "fencelock_demo";

/**
 * The storage server at `url`, spoken to with fencelock's `/v1` API or with the seed's `POST /` (the token
 * as `version`, 0 without one), which etcd's contrib/lock storage speaks too.
 */
export function storageTarget(url: string, timeoutMs: number, protocol: "v1" | "seed" = "v1"): WriteTarget {
  const storage = new StorageClient({ url, timeoutMs });
  const seed = protocol === "seed" ? new SeedStorageClient({ url, timeoutMs }) : undefined;
  return {
    label: "the storage",
    async write(key, value, token) {
      if (seed) await seed.write(key, value, { version: token ?? 0n });
      else await storage.write(key, value, { token });
    },
    async read(key) {
      const stored = await storage.read(key);
      return stored === null ? null : stored.toString("utf8");
    },
    async close() {
      storage.close();
      seed?.close();
    },
  };
}

/**
 * PostgreSQL at `connectionString`: a fenced write is one `withFence` transaction on fence `key`; an
 * unfenced one a plain upsert. Creates the demo table and the fence table if missing. Needs the `pg`
 * package (a peer dependency); rejects with a message saying so if it is not installed.
 */
export async function postgresTarget(connectionString: string, timeoutMs: number): Promise<WriteTarget> {
  const pg = await import("pg").catch((err: unknown) => {
    throw new Error("--postgres needs the pg package: npm install pg", { cause: err });
  });
  const { ensureFenceTable, withFence } = await import("../guard/postgres/index.js");
  const pool = new pg.default.Pool({ connectionString, max: 2, connectionTimeoutMillis: timeoutMs });
  // An idle connection broken by the server must not crash the client.
  pool.on("error", () => {});
  const upsert = `INSERT INTO ${DEMO_TABLE} (key, val) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET val = EXCLUDED.val`;
  try {
    await pool
      .query(`CREATE TABLE IF NOT EXISTS ${DEMO_TABLE} (key text PRIMARY KEY, val text NOT NULL)`)
      .catch((err: { code?: string }) => {
        // Two scenarios creating it at once collide on the catalog; the loser finds it made.
        if (err.code !== "23505" && err.code !== "42P07") throw err;
      });
    await ensureFenceTable(pool);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return {
    label: "PostgreSQL",
    async write(key, value, token) {
      if (token === undefined) {
        await pool.query(upsert, [key, value]);
        return;
      }
      await withFence(pool, { fence: key, token, timeoutMs }, (tx) => tx.query(upsert, [key, value]));
    },
    async clear(key) {
      await pool.query(`DELETE FROM ${DEMO_TABLE} WHERE key = $1`, [key]);
    },
    async read(key) {
      const { rows } = await pool.query(`SELECT val FROM ${DEMO_TABLE} WHERE key = $1`, [key]);
      return (rows[0] as { val: string } | undefined)?.val ?? null;
    },
    close: () => pool.end(),
  };
}
