/** The backend-independent lock client tests, on lockd (a real child process, data on disk). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { connect } from "../../src/client/index.js";
import { startLockd } from "../../src/testkit/index.js";
import { lockClientSuite } from "./suite.js";

lockClientSuite("lockd", () => startLockd());

// A waiter used to cancel its watch at each hand-over, resetting its HTTP/2 stream; lockd's HTTP/2 layer
// (nghttp2) allows a connection 1,000 resets at once and 33 a second after that, then closes it with
// GOAWAY, failing every call on it. 1,600 hand-overs in a few seconds are well past that.
test("1,600 hand-overs among 32 sessions of one client, as fast as they go, on one connection", async (t) => {
  const lockd = await startLockd({ extraArgs: ["--sync", "normal"] });
  t.after(() => lockd.stop());
  const client = connect({ endpoints: lockd.endpoints });
  t.after(() => client.close());
  const name = `/test/handovers-${process.pid}`;
  const sessions = await Promise.all(Array.from({ length: 32 }, () => client.session({ ttl: 30 })));
  const deadline = Date.now() + 60_000;
  let acquired = 0;
  // Each session takes the lock, gives it back and asks again at once: it queues behind the others and
  // waits (one watch) for every turn.
  await Promise.all(
    sessions.map(async (session) => {
      for (let i = 0; i < 50 && Date.now() < deadline; i++) {
        const lock = await session.mutex(name).lock({ timeoutMs: 20_000 });
        acquired++;
        await lock.unlock();
      }
    }),
  );
  assert.equal(acquired, 1_600, "every turn was taken before the deadline");
});
