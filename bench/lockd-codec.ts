/**
 * `npm run bench:lockd-codec`: what lockd's own codecs cost per message against gRPC's loader, the
 * baseline, in the same run: the request of a lock's Txn (the one the lock client sends) and of a
 * one-key Range, decoded (`src/lockd/kv-requests.ts` against the loader's deserializer), and their
 * answers encoded (`src/lockd/kv-answers.ts` against the loader's serializer). Rounds alternate between
 * the two, after untimed ones; the median round is printed. Bounded: `--rounds` (default 9, at most 50)
 * of 50,000 messages per codec.
 */
import { parseArgs } from "node:util";
import { acquireTxn, type LockKeys } from "../src/client/kv.js";
import { encodeKvAnswer } from "../src/lockd/kv-answers.js";
import { kvRequestDecoders } from "../src/lockd/kv-requests.js";
import { etcdServices } from "../src/proto/index.js";
import type { KeyValue, RangeRequest, ResponseHeader, TxnResponse } from "../src/proto/types.js";

const PER_ROUND = 50_000;
const UNTIMED_ROUNDS = 2;

const { values } = parseArgs({ options: { rounds: { type: "string", default: "9" } } });
const rounds = Number(values.rounds);
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 50)) {
  console.error("--rounds must be a whole number from 1 to 50");
  process.exit(2);
}

const kv = etcdServices().KV.service;
const ours = kvRequestDecoders();

// A lock's keys and answer as lockd writes them: etcd's long IDs in every header, a lease on the key.
const name = "/fencelock/locks/orders/42";
const keys: LockKeys = {
  prefix: Buffer.from(`${name}/`),
  rangeEnd: Buffer.from(`${name}0`),
  key: Buffer.from(`${name}/694d6f1e2c1a0b01`),
};
const lease = 7_587_892_345_678_901_234n;
const header = (revision: string): ResponseHeader => ({
  cluster_id: "14841639068965178418",
  member_id: "10276657743932975437",
  revision,
  raft_term: "1",
});
const holder: KeyValue = {
  key: keys.key,
  create_revision: "812345",
  mod_revision: "812345",
  version: "1",
  value: Buffer.from("a1b2c3d4e5f6-17"),
  lease: lease.toString(),
};
// The answers inside a Txn carry only their revision in their headers, as etcd's do.
const inner = (revision: string): ResponseHeader => ({
  cluster_id: "0",
  member_id: "0",
  revision,
  raft_term: "0",
});
const lockAnswer: TxnResponse = {
  header: header("812345"),
  succeeded: true,
  responses: [
    { response_put: { header: inner("812345"), prev_kv: null } },
    { response_range: { header: inner("812345"), kvs: [holder], more: false, count: "1" } },
  ],
};
const rangeRequest: RangeRequest = { key: keys.key };
const rangeAnswer = { header: header("812345"), kvs: [holder], more: false, count: "1" };

const txnBytes = kv.Txn?.requestSerialize(acquireTxn(keys, lease, Buffer.from("a1b2c3d4e5f6-17"))) as Buffer;
const rangeBytes = kv.Range?.requestSerialize(rangeRequest) as Buffer;

interface Pair {
  what: string;
  loader: () => unknown;
  lockd: () => unknown;
}

const pairs: Pair[] = [
  {
    what: "lock Txn request, decode",
    loader: () => kv.Txn?.requestDeserialize(txnBytes),
    lockd: () => ours.Txn(txnBytes),
  },
  {
    what: "lock Txn answer, encode",
    loader: () => kv.Txn?.responseSerialize(lockAnswer),
    lockd: () => encodeKvAnswer("Txn", lockAnswer),
  },
  {
    what: "one-key Range request, decode",
    loader: () => kv.Range?.requestDeserialize(rangeBytes),
    lockd: () => ours.Range(rangeBytes),
  },
  {
    what: "one-key Range answer, encode",
    loader: () => kv.Range?.responseSerialize(rangeAnswer),
    lockd: () => encodeKvAnswer("Range", rangeAnswer),
  },
];

/** µs per message over one round of `f`. */
function round(f: () => unknown): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PER_ROUND; i++) f();
  return Number(process.hrtime.bigint() - t0) / 1000 / PER_ROUND;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

console.log(
  `lockd codecs against gRPC's loader — ${rounds} rounds of ${PER_ROUND} messages each, alternating`,
);
console.log("");
console.log(
  `${"message".padEnd(34)}${"loader µs".padStart(12)}${"lockd µs".padStart(12)}${"lockd/loader".padStart(14)}`,
);
for (const { what, loader, lockd } of pairs) {
  const times = { loader: [] as number[], lockd: [] as number[] };
  for (let r = 0; r < UNTIMED_ROUNDS + rounds; r++) {
    const a = round(loader);
    const b = round(lockd);
    if (r < UNTIMED_ROUNDS) continue;
    times.loader.push(a);
    times.lockd.push(b);
  }
  const a = median(times.loader);
  const b = median(times.lockd);
  console.log(
    `${what.padEnd(34)}${a.toFixed(2).padStart(12)}${b.toFixed(2).padStart(12)}${`${(b / a).toFixed(2)}x`.padStart(14)}`,
  );
}
const sizes = [kv.Txn?.responseSerialize(lockAnswer) as Buffer, encodeKvAnswer("Txn", lockAnswer)];
console.log("");
console.log(
  `lock Txn answer bytes: loader ${sizes[0]?.length}, lockd ${sizes[1]?.length} (defaults left out)`,
);
