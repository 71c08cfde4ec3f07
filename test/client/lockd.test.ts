/** The backend-independent lock client tests, on lockd (a real child process, data on disk). */
import { startLockd } from "../../src/testkit/index.js";
import { lockClientSuite } from "./suite.js";

lockClientSuite("lockd", () => startLockd());
