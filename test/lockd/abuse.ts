/**
 * The abusive requests of the stall test, run in a worker thread so that decoding their large answers
 * does not delay the test's own keep-alive probe. Each runs after the previous one; the figures and
 * answers go back to the parent in one message.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as grpc from "@grpc/grpc-js";
import {
  type DeleteRangeResponse,
  etcdServices,
  type RangeResponse,
  type TxnResponse,
} from "../../src/proto/index.js";

/** What the parent passes: where lockd listens and the prefix of its keys. */
export interface AbuseInput {
  endpoint: string;
  prefix: string;
}

/** One request's outcome. */
export interface AbuseStep {
  ms: number;
  error?: { code: number; details: string };
}

/** What the worker sends back. */
export interface AbuseResult {
  nested: AbuseStep;
  flat: AbuseStep & { counts: string[] };
  ranges: AbuseStep & { lengths: number[] };
  deleted: AbuseStep & { deleted: string; prevKvs: number; revision: string };
}

type Unary = (
  req: object,
  options: object,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

async function main(input: AbuseInput): Promise<AbuseResult> {
  const kv = new (etcdServices().KV)(input.endpoint, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
  });
  const call = async <T>(method: string, req: object): Promise<{ res?: T } & AbuseStep> => {
    const t0 = performance.now();
    const fn = (kv as unknown as Record<string, Unary>)[method] as Unary;
    return new Promise((resolve) =>
      fn.call(kv, req, { deadline: Date.now() + 60_000 }, (err, res) =>
        resolve(
          err
            ? { ms: performance.now() - t0, error: { code: err.code, details: err.details } }
            : { ms: performance.now() - t0, res: res as T },
        ),
      ),
    );
  };
  try {
    const key = Buffer.from(input.prefix);
    const end = Buffer.from(
      `${input.prefix.slice(0, -1)}${String.fromCharCode(input.prefix.charCodeAt(input.prefix.length - 1) + 1)}`,
    );
    const countAll = { request_range: { key, range_end: end, count_only: true } };
    const nested = await call<TxnResponse>("Txn", {
      success: Array.from({ length: 128 }, () => ({ request_txn: { success: Array(8).fill(countAll) } })),
    });
    const flat = await call<TxnResponse>("Txn", { success: Array(128).fill(countAll) });
    const t0 = performance.now();
    const ranges = await Promise.all(
      Array.from({ length: 5 }, () => call<RangeResponse>("Range", { key, range_end: end })),
    );
    const rangesMs = performance.now() - t0;
    const del = await call<DeleteRangeResponse>("DeleteRange", { key, range_end: end, prev_kv: true });
    return {
      nested: { ms: nested.ms, error: nested.error },
      flat: {
        ms: flat.ms,
        error: flat.error,
        counts: (flat.res?.responses ?? []).map((r) => r.response_range?.count ?? "none"),
      },
      ranges: {
        ms: rangesMs,
        error: ranges.find((r) => r.error)?.error,
        lengths: ranges.map((r) => r.res?.kvs.length ?? -1),
      },
      deleted: {
        ms: del.ms,
        error: del.error,
        deleted: del.res?.deleted ?? "none",
        prevKvs: del.res?.prev_kvs.length ?? -1,
        revision: del.res?.header?.revision ?? "none",
      },
    };
  } finally {
    kv.close();
  }
}

if (parentPort) {
  const port = parentPort;
  main(workerData as AbuseInput).then(
    (result) => port.postMessage(result),
    (err: unknown) => port.postMessage({ failed: String(err) }),
  );
}
