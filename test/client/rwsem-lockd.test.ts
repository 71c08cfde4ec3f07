/** The read-write lock and semaphore tests on lockd (a real child process, data on disk). */
import { startLockd } from "../../src/testkit/index.js";
import { rwlockSemaphoreSuite } from "./rwsem-suite.js";

rwlockSemaphoreSuite("lockd", () => startLockd());
