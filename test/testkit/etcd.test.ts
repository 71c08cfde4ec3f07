/**
 * The etcd launcher's failure path: a member that cannot start makes the whole start fail fast and
 * leaves no other member running.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { test } from "node:test";
import { freePort, startEtcdCluster } from "../../src/testkit/index.js";

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

test("a member whose port is taken fails the start at once, and no other member is left running", async (t) => {
  const ports = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const taken = await listen((ports[2] as { client: number }).client);
  t.after(() => taken.close());
  const started = Date.now();
  await assert.rejects(startEtcdCluster({ ports, timeoutMs: 30_000 }), /address already in use/);
  assert.ok(Date.now() - started < 20_000, "the other members' starts were cut short, not waited out");
  // Every port of the other members is free again: nothing of the failed start is still running.
  for (const p of ports.slice(0, 2)) {
    for (const port of [p.client, p.peer]) (await listen(port)).close();
  }
});
