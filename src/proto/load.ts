/**
 * Loads `proto/etcd.proto` once, for the lock client and for lockd alike.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** Absolute path of the project's etcd v3 subset. `dist/src/proto/load.js` → `proto/etcd.proto`. */
export const ETCD_PROTO_PATH = fileURLToPath(new URL("../../../proto/etcd.proto", import.meta.url));

/**
 * Decoding options: int64 as decimal strings (exact; converted to `bigint` by `int64.ts`), enums as
 * numbers, bytes as `Buffer`, defaults filled in, and the set member of each oneof named.
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  defaults: true,
  oneofs: true,
};

/** The service constructors and definitions of the etcd v3 subset. */
export interface EtcdServices {
  KV: grpc.ServiceClientConstructor;
  Watch: grpc.ServiceClientConstructor;
  Lease: grpc.ServiceClientConstructor;
  Cluster: grpc.ServiceClientConstructor;
  Maintenance: grpc.ServiceClientConstructor;
  Auth: grpc.ServiceClientConstructor;
}

let cached: EtcdServices | undefined;

/**
 * Returns the etcd v3 services, loading the `.proto` file on the first call and reusing it after.
 * Each constructor also carries `.service`, the definition a `grpc.Server` needs.
 */
export function etcdServices(): EtcdServices {
  if (cached) return cached;
  const definition = protoLoader.loadSync(ETCD_PROTO_PATH, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition).etcdserverpb as grpc.GrpcObject;
  const get = (name: string) => pkg[name] as grpc.ServiceClientConstructor;
  cached = {
    KV: get("KV"),
    Watch: get("Watch"),
    Lease: get("Lease"),
    Cluster: get("Cluster"),
    Maintenance: get("Maintenance"),
    Auth: get("Auth"),
  };
  return cached;
}
