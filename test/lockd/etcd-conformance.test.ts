/** The conformance suite against a real single-node etcd: the reference answers. */
import { startEtcdCluster } from "../../src/testkit/index.js";
import { conformanceSuite } from "./conformance.js";

conformanceSuite("etcd", async () => {
  const cluster = await startEtcdCluster({ size: 1 });
  return { endpoints: cluster.endpoints, stop: () => cluster.stop() };
});
