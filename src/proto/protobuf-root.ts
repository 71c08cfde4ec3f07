/**
 * `proto/etcd.proto` parsed by protobufjs itself, for the decoders that read protobufjs's messages
 * directly (lockd's requests, the client's answers) instead of through gRPC's loader.
 */
import protobuf from "protobufjs";
import { ETCD_PROTO_PATH } from "./load.js";

let cached: protobuf.Root | undefined;

/**
 * The parsed `.proto`, field names as written (as the loader keeps them). Parsed on the first call,
 * the same root after. Throws if protobufjs would decode int64s into numbers, inexact past 2^53.
 */
export function etcdProtobufRoot(): protobuf.Root {
  if (cached) return cached;
  if (!protobuf.util.Long) throw new Error("fencelock: protobufjs decodes int64s without the long package");
  const root = new protobuf.Root();
  root.loadSync(ETCD_PROTO_PATH, { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}
