/** The conformance suite against lockd, a real child process with its data on disk. */
import { startLockd } from "../../src/testkit/index.js";
import { conformanceSuite } from "./conformance.js";

conformanceSuite("lockd", async () => {
  const lockd = await startLockd();
  return { endpoints: lockd.endpoints, stop: () => lockd.stop() };
});
