/** The backend-independent lock client tests, on a real three-member etcd cluster. */
import { startEtcdCluster } from "../../src/testkit/index.js";
import { lockClientSuite } from "./suite.js";

lockClientSuite("etcd", () => startEtcdCluster({ size: 3 }));
