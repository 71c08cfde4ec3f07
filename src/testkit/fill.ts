/**
 * Loads many keys into an etcd-compatible server quickly, for tests and benchmarks that need a large
 * keyspace: 100-byte values, 128 puts to a Txn, 8 Txns in flight.
 */
import * as grpc from "@grpc/grpc-js";
import { etcdServices } from "../proto/load.js";

/**
 * Puts `count` keys `<prefix><000000…>` with 100-byte values on the server at `endpoint`. Rejects with the
 * gRPC error of the first Txn that fails (each has a 30 s deadline); the connection is closed either way.
 */
export async function fillKeys(endpoint: string, count: number, prefix: string): Promise<void> {
  const kv = new (etcdServices().KV)(endpoint, grpc.credentials.createInsecure());
  const txn = (req: object) =>
    new Promise<void>((resolve, reject) =>
      (kv as unknown as { Txn: (r: object, o: object, cb: (e: Error | null) => void) => void }).Txn(
        req,
        { deadline: Date.now() + 30_000 },
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  const value = Buffer.alloc(100, "v");
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const start = next;
      next = Math.min(count, next + 128);
      const success = [];
      for (let i = start; i < next; i++) {
        success.push({ request_put: { key: Buffer.from(`${prefix}${String(i).padStart(6, "0")}`), value } });
      }
      await txn({ success });
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    kv.close();
  }
}
