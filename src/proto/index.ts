/** The shared etcd v3 wire layer: the `.proto` loader, int64 conversion and message shapes. */

export { fromWire, toWire, type WireInt64 } from "./int64.js";
export { ETCD_PROTO_PATH, type EtcdServices, etcdServices } from "./load.js";
export * from "./types.js";
