/**
 * `npm run bench:lockd-codec`: what our own etcd codecs cost per message against gRPC's loader, the
 * baseline, in the same run. lockd's: the request of a lock's Txn (the one the lock client sends) and of
 * a one-key Range, decoded (`src/lockd/kv-requests.ts` against the loader's deserializer), and their
 * answers encoded (`src/lockd/kv-answers.ts` against the loader's serializer). The client's: those
 * answers and a watch event's, decoded (`src/client/answer-decoders.ts` against the loader's
 * deserializer). Rounds alternate between the two, after untimed ones; the median round is printed.
 * Bounded: `--rounds` (default 9, at most 50) of 50,000 messages per codec.
 */
import { parseArgs } from "node:util";
import { answerDecoders } from "../src/client/answer-decoders.js";
import { acquireTxn, type LockKeys } from "../src/client/kv.js";
import { encodeKvAnswer } from "../src/lockd/kv-answers.js";
import { kvRequestDecoders } from "../src/lockd/kv-requests.js";
import { etcdServices } from "../src/proto/index.js";
import type {
  KeyValue,
  RangeRequest,
  ResponseHeader,
  TxnResponse,
  WatchResponse,
} from "../src/proto/types.js";

const PER_ROUND = 50_000;
const UNTIMED_ROUNDS = 2;

const { values } = parseArgs({ options: { rounds: { type: "string", default: "9" } } });
const rounds = Number(values.rounds);
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 50)) {
  console.error("--rounds must be a whole number from 1 to 50");
  process.exit(2);
}

const kv = etcdServices().KV.service;
const watch = etcdServices().Watch.service.Watch;
const requests = kvRequestDecoders();
const client = answerDecoders();

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

// What a waiter reads when the key before it goes: its holder's deletion, with the key as it was.
const watchAnswer: WatchResponse = {
  header: header("812346"),
  watch_id: "3",
  created: false,
  canceled: false,
  compact_revision: "0",
  cancel_reason: "",
  fragment: false,
  events: [
    {
      type: 1,
      kv: { ...holder, mod_revision: "812346", version: "0", value: Buffer.alloc(0), lease: "0" },
      prev_kv: holder,
    },
  ],
};

const txnBytes = kv.Txn?.requestSerialize(acquireTxn(keys, lease, Buffer.from("a1b2c3d4e5f6-17"))) as Buffer;
const rangeBytes = kv.Range?.requestSerialize(rangeRequest) as Buffer;

const txnAnswerBytes = encodeKvAnswer("Txn", lockAnswer);
const rangeAnswerBytes = encodeKvAnswer("Range", rangeAnswer);
const watchAnswerBytes = watch?.responseSerialize(watchAnswer) as Buffer;
const decoder = (method: string) => client.get(method) as (bytes: Buffer) => object;
const decodeTxn = decoder("KV.Txn");
const decodeRange = decoder("KV.Range");
const decodeWatch = decoder("Watch.Watch");

interface Pair {
  what: string;
  loader: () => unknown;
  ours: () => unknown;
}

const pairs: Pair[] = [
  {
    what: "lockd: lock Txn request, decode",
    loader: () => kv.Txn?.requestDeserialize(txnBytes),
    ours: () => requests.Txn(txnBytes),
  },
  {
    what: "lockd: lock Txn answer, encode",
    loader: () => kv.Txn?.responseSerialize(lockAnswer),
    ours: () => encodeKvAnswer("Txn", lockAnswer),
  },
  {
    what: "lockd: one-key Range request, decode",
    loader: () => kv.Range?.requestDeserialize(rangeBytes),
    ours: () => requests.Range(rangeBytes),
  },
  {
    what: "lockd: one-key Range answer, encode",
    loader: () => kv.Range?.responseSerialize(rangeAnswer),
    ours: () => encodeKvAnswer("Range", rangeAnswer),
  },
  {
    what: "client: lock Txn answer, decode",
    loader: () => kv.Txn?.responseDeserialize(txnAnswerBytes),
    ours: () => decodeTxn(txnAnswerBytes),
  },
  {
    what: "client: one-key Range answer, decode",
    loader: () => kv.Range?.responseDeserialize(rangeAnswerBytes),
    ours: () => decodeRange(rangeAnswerBytes),
  },
  {
    what: "client: watch event answer, decode",
    loader: () => watch?.responseDeserialize(watchAnswerBytes),
    ours: () => decodeWatch(watchAnswerBytes),
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
  `our etcd codecs against gRPC's loader — ${rounds} rounds of ${PER_ROUND} messages each, alternating`,
);
console.log("");
console.log(
  `${"message".padEnd(38)}${"loader µs".padStart(12)}${"ours µs".padStart(12)}${"ours/loader".padStart(14)}`,
);
for (const { what, loader, ours } of pairs) {
  const times = { loader: [] as number[], ours: [] as number[] };
  for (let r = 0; r < UNTIMED_ROUNDS + rounds; r++) {
    const a = round(loader);
    const b = round(ours);
    if (r < UNTIMED_ROUNDS) continue;
    times.loader.push(a);
    times.ours.push(b);
  }
  const a = median(times.loader);
  const b = median(times.ours);
  console.log(
    `${what.padEnd(38)}${a.toFixed(2).padStart(12)}${b.toFixed(2).padStart(12)}${`${(b / a).toFixed(2)}x`.padStart(14)}`,
  );
}
const sizes = [kv.Txn?.responseSerialize(lockAnswer) as Buffer, encodeKvAnswer("Txn", lockAnswer)];
console.log("");
console.log(
  `lock Txn answer bytes: loader ${sizes[0]?.length}, lockd ${sizes[1]?.length} (defaults left out)`,
);
