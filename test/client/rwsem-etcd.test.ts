/** The read-write lock and semaphore tests on a real three-member etcd cluster. */
import { startEtcdCluster } from "../../src/testkit/index.js";
import { rwlockSemaphoreSuite } from "./rwsem-suite.js";

rwlockSemaphoreSuite("etcd", () => startEtcdCluster({ size: 3 }));
