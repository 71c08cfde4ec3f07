/**
 * `fencelock lockd backup FILE`: asks a running lockd for a consistent copy of its database (etcd's
 * Maintenance.Snapshot) and writes it to FILE, which a fresh lockd can start from (`--data` of a directory
 * holding it as `lockd.db`). Written as `FILE.part`, synced, then renamed: FILE is whole or absent.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { etcdServices, type SnapshotResponse } from "../../proto/index.js";

export const BACKUP_HELP = `usage: fencelock lockd backup FILE [--endpoint HOST:PORT] [--timeout SECONDS]

  FILE                 where to write the copy (a SQLite database: start lockd on a directory
                       holding it as lockd.db)
  --endpoint HOST:PORT the running lockd (default 127.0.0.1:2379)
  --timeout SECONDS    give up after this long (default 600)

Prints {"event":"backup","file":...,"revision":...,"bytes":...} once FILE is written and synced.`;

/** Runs `fencelock lockd backup`; resolves with the exit code. */
export async function runBackup(argv: string[]): Promise<number> {
  let values: { endpoint?: string; timeout?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        endpoint: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    console.error(`fencelock lockd backup: ${(err as Error).message}\n${BACKUP_HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(BACKUP_HELP);
    return 0;
  }
  const file = positionals[0];
  if (positionals.length !== 1 || !file) {
    console.error(`fencelock lockd backup: give exactly one FILE\n${BACKUP_HELP}`);
    return 2;
  }
  const timeout = Number(values.timeout ?? "600");
  if (!(Number.isInteger(timeout) && timeout > 0 && timeout <= 86_400)) {
    console.error(
      `fencelock lockd backup: --timeout must be whole seconds from 1 to 86400, got "${values.timeout}"`,
    );
    return 2;
  }
  const endpoint = values.endpoint ?? "127.0.0.1:2379";
  const client = new (etcdServices().Maintenance)(endpoint, grpc.credentials.createInsecure()) as unknown as {
    Snapshot(req: object, options: object): grpc.ClientReadableStream<SnapshotResponse>;
    close(): void;
  };
  const part = `${file}.part`;
  const fd = openSync(part, "w");
  let bytes = 0;
  let revision = "0";
  try {
    const stream = client.Snapshot({}, { deadline: Date.now() + timeout * 1000 });
    let last: SnapshotResponse | undefined;
    for await (const chunk of stream as AsyncIterable<SnapshotResponse>) {
      writeSync(fd, chunk.blob);
      bytes += chunk.blob.length;
      last = chunk;
    }
    if (last?.remaining_bytes !== "0") throw new Error("the snapshot ended early");
    revision = last.header?.revision ?? "0";
    fsyncSync(fd);
    closeSync(fd);
    renameSync(part, file);
  } catch (err) {
    closeSync(fd);
    rmSync(part, { force: true });
    const e = err as grpc.ServiceError;
    console.error(`fencelock lockd backup: ${e.details ?? e.message}`);
    return 1;
  } finally {
    client.close();
  }
  console.log(JSON.stringify({ event: "backup", file, revision, bytes }));
  return 0;
}
