/**
 * A consistent copy of a lockd database at one committed revision, made while the node serves: every
 * history row at or below that revision, the leases and the node's identity as they were at it, written
 * to a new SQLite file a page of rows per event-loop turn. A fresh lockd started on the copy continues
 * above that revision.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { LockdDb, MetaName } from "./db.js";
import { LockdDb as Db } from "./db.js";
import { nextTurn } from "./range-result.js";

/** History rows copied in one step. */
const STEP_ROWS = 2000;

/** What the copy holds besides history: taken when no write was pending, so all of it is at `revision`. */
export interface CopyPoint {
  revision: bigint;
  leases: { id: bigint; ttl: bigint }[];
  meta: Partial<Record<MetaName, bigint>>;
}

function syncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies `source` at `point` into a new database at `path` (written as `path.part`, synced, then renamed).
 * `stillOpen` is asked before each step: once false, the copy stops with an error and leaves nothing.
 */
export async function copyDatabase(
  source: LockdDb,
  point: CopyPoint,
  path: string,
  stillOpen: () => boolean,
): Promise<void> {
  const part = `${path}.part`;
  rmSync(part, { force: true });
  const dest = new Db(part, "normal");
  try {
    dest.begin();
    for (const [name, value] of Object.entries(point.meta)) dest.setMeta(name as MetaName, value);
    dest.setMeta("revision", point.revision);
    for (const { id, ttl } of point.leases) dest.insertLease(id, ttl);
    let rev = -1n;
    let sub = -1n;
    for (;;) {
      if (!stillOpen()) throw new Error("lockd stopped during the backup");
      const rows = source.historyPage(rev, sub, point.revision, STEP_ROWS);
      for (const row of rows) dest.insert(row);
      if (rows.length < STEP_ROWS) break;
      const last = rows[rows.length - 1] as { rev: bigint; sub: bigint };
      rev = last.rev;
      sub = last.sub;
      await nextTurn();
    }
    dest.commit();
    // Closing checkpoints the WAL into the file, which then stands alone.
    dest.close();
    syncPath(part);
    renameSync(part, path);
    syncPath(dirname(path));
  } catch (err) {
    dest.close();
    rmSync(part, { force: true });
    rmSync(`${part}-wal`, { force: true });
    throw err;
  }
}
