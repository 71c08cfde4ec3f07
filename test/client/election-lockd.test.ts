/** The election tests on lockd (a real child process, data on disk), with the real etcdctl. */
import { startLockd } from "../../src/testkit/index.js";
import { electionSuite } from "./election-suite.js";

electionSuite("lockd", () => startLockd());
