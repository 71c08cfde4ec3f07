/** The election tests on a real three-member etcd cluster, with the real etcdctl. */
import { startEtcdCluster } from "../../src/testkit/index.js";
import { electionSuite } from "./election-suite.js";

electionSuite("etcd", () => startEtcdCluster({ size: 3 }));
