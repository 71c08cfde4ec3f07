/**
 * The gRPC handlers of lockd: KV, Lease, Cluster, Maintenance and Auth, each a thin translation to the
 * store. Every failure becomes a gRPC status (etcd's, or INTERNAL with a log line); nothing a client
 * sends can throw out of a handler.
 */
import { randomUUID } from "node:crypto";
import { createReadStream, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type {
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseRevokeRequest,
  LeaseTimeToLiveRequest,
  MemberListResponse,
  SnapshotResponse,
  StatusResponse,
} from "../proto/index.js";
import { fromWire, toWire } from "../proto/index.js";
import { EtcdError, errors } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { Store } from "./store.js";

/** The etcd API version lockd reports in Maintenance.Status: the 3.4 subset it implements. */
export const API_VERSION = "3.4.0";

/** Where lockd logs what it cannot tell a client. */
export type Log = (event: string, fields: Record<string, unknown>) => void;

function toStatus(err: unknown, log: Log): Partial<grpc.StatusObject> {
  if (err instanceof EtcdError) {
    if (err.code === "STORAGE_FAILED") log("storage-failed", { error: String(err.cause) });
    return { code: err.grpcCode, details: err.message };
  }
  log("internal-error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return { code: status.INTERNAL, details: "lockd: internal error" };
}

/** What every handler needs: where to log, and the metrics to count requests in (if served). */
export interface HandlerContext {
  log: Log;
  metrics?: Metrics;
}

function unary<Req, Res>(
  ctx: HandlerContext,
  method: string,
  fn: (req: Req) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let result: Promise<Res>;
    try {
      result = fn(call.request);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (res) => {
        ctx.metrics?.request(method, status.OK);
        callback(null, res);
      },
      (err: unknown) => {
        const st = toStatus(err, ctx.log);
        ctx.metrics?.request(method, st.code ?? status.UNKNOWN);
        callback(st);
      },
    );
  };
}

/** KV service handlers. */
export function kvHandlers(store: Store, ctx: HandlerContext): grpc.UntypedServiceImplementation {
  return {
    Range: unary(ctx, "Range", (req) => store.range(req as never)),
    Put: unary(ctx, "Put", (req) => store.put(req as never)),
    DeleteRange: unary(ctx, "DeleteRange", (req) => store.deleteRange(req as never)),
    Txn: unary(ctx, "Txn", (req) => store.txn(req as never)),
    Compact: unary(ctx, "Compact", (req) => store.compact(req as never)),
  };
}

/** Lease service handlers. */
export function leaseHandlers(store: Store, ctx: HandlerContext): grpc.UntypedServiceImplementation {
  const keepAlive = (call: grpc.ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
    call.on("data", (req: LeaseKeepAliveRequest) => {
      const id = fromWire(req.ID);
      store.renew(id).then(
        (ttl) => {
          ctx.metrics?.request("LeaseKeepAlive", status.OK);
          if (!call.cancelled && call.writable)
            call.write({ header: store.header(), ID: toWire(id), TTL: toWire(ttl) });
        },
        (err: unknown) => {
          const st = toStatus(err, ctx.log);
          ctx.metrics?.request("LeaseKeepAlive", st.code ?? status.UNKNOWN);
          call.emit("error", st);
        },
      );
    });
    call.on("end", () => call.end());
    call.on("error", () => {});
  };
  return {
    LeaseGrant: unary(ctx, "LeaseGrant", (req) => store.grant(req as never)),
    LeaseRevoke: unary(ctx, "LeaseRevoke", (req) => store.revoke(fromWire((req as LeaseRevokeRequest).ID))),
    LeaseKeepAlive: keepAlive as grpc.UntypedHandleCall,
    LeaseTimeToLive: unary(ctx, "LeaseTimeToLive", (req) => {
      const r = req as LeaseTimeToLiveRequest;
      return store.timeToLive(fromWire(r.ID), Boolean(r.keys));
    }),
    LeaseLeases: unary(ctx, "LeaseLeases", () => store.leases()),
  };
}

/** Cluster service handlers: one member, this node. */
export function clusterHandlers(
  store: Store,
  ctx: HandlerContext,
  clientUrl: () => string,
): grpc.UntypedServiceImplementation {
  return {
    MemberList: unary(
      ctx,
      "MemberList",
      async (): Promise<MemberListResponse> => ({
        header: store.header(),
        members: [
          {
            ID: toWire(store.memberId),
            name: "lockd",
            peerURLs: [],
            clientURLs: [clientUrl()],
            isLearner: false,
          },
        ],
      }),
    ),
  };
}

/** Maintenance service handlers: Status, as a single node that is always its own leader. */
export function maintenanceHandlers(
  store: Store,
  ctx: HandlerContext,
  scratchDir: string,
): grpc.UntypedServiceImplementation {
  return {
    Snapshot: snapshot(store, ctx, scratchDir) as grpc.UntypedHandleCall,
    Status: unary(ctx, "Status", async (): Promise<StatusResponse> => {
      const size = store.dbSize();
      return {
        header: store.header(),
        version: API_VERSION,
        dbSize: toWire(size.total),
        leader: toWire(store.memberId),
        raftIndex: toWire(store.rev),
        raftTerm: toWire(store.term),
        raftAppliedIndex: toWire(store.rev),
        errors: [],
        dbSizeInUse: toWire(size.inUse),
        isLearner: false,
      };
    }),
  };
}

/** Bytes of the database file sent in one Snapshot message. */
const SNAPSHOT_CHUNK = 64 * 1024;

/**
 * Maintenance.Snapshot, as etcd's: the database file in chunks, each with the bytes still to come. lockd
 * first writes a consistent copy at the committed revision (`Store.backup`) to `scratchDir`, streams it
 * (waiting whenever the client reads slower), and removes it, also when the client goes away.
 */
function snapshot(store: Store, ctx: HandlerContext, scratchDir: string) {
  return (call: grpc.ServerWritableStream<unknown, SnapshotResponse>) => {
    void (async () => {
      const path = join(scratchDir, `lockd-snapshot-${randomUUID()}.db`);
      try {
        const rev = await store.backup(path);
        const size = statSync(path).size;
        let sent = 0;
        const file = createReadStream(path, { highWaterMark: SNAPSHOT_CHUNK });
        for await (const chunk of file as AsyncIterable<Buffer>) {
          if (call.cancelled) break;
          sent += chunk.length;
          const more = call.write({
            header: store.header(rev),
            remaining_bytes: toWire(BigInt(size - sent)),
            blob: chunk,
          });
          if (!more) await new Promise((resolve) => call.once("drain", resolve));
        }
        ctx.metrics?.request("Snapshot", status.OK);
        call.end();
      } catch (err) {
        const st = toStatus(err instanceof EtcdError ? err : errors.storageFailed(err), ctx.log);
        ctx.metrics?.request("Snapshot", st.code ?? status.UNKNOWN);
        call.emit("error", st);
      } finally {
        rmSync(path, { force: true });
      }
    })();
  };
}

/** Auth service handlers: lockd has no users, and says so as etcd does. */
export function authHandlers(ctx: HandlerContext): grpc.UntypedServiceImplementation {
  return { Authenticate: unary(ctx, "Authenticate", () => Promise.reject(errors.authNotEnabled())) };
}
