/**
 * The seed replayed with real processes: `fencelock client 1|2 --protocol seed` against a seed-like
 * storage (like etcd's contrib/lock storage: only `POST /` with JSON, the connection dropped on anything
 * else) and against ours; a client without the flag gets an error naming it. And the regression of the
 * seed's own scheme: clients that send their LEASE ID as `version` (`--token-source lease`), a holder
 * frozen past its TTL with SIGSTOP, against a real lockd and our real storage: client 2's write is never
 * lost, because lockd's lease IDs grow.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ClientProcess, type DemoEvent } from "../../src/demo/index.js";
import { StorageClient } from "../../src/storage/index.js";
import { parseJson, RawNumber } from "../../src/storage/json.js";
import { type LockdInstance, type StorageHandle, startLockd, startStorage } from "../../src/testkit/index.js";

/** A storage like etcd's contrib/lock one: `POST /` JSON only, `version` must equal the stored one. */
async function seedLikeStorage(
  other: "drop" | "404",
): Promise<{ url: string; data: Map<string, string>; server: Server }> {
  const data = new Map<string, string>();
  const versions = new Map<string, bigint>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let doc: ReturnType<typeof parseJson> | undefined;
      try {
        doc =
          req.method === "POST" && req.url === "/" ? parseJson(Buffer.concat(chunks).toString()) : undefined;
      } catch {
        doc = undefined;
      }
      const body = doc as Record<string, unknown> | undefined;
      if (!body || typeof body.key !== "string" || !(body.version instanceof RawNumber)) {
        // The seed's storage exits on a body it cannot parse: its clients see the connection drop.
        if (other === "drop") req.socket.destroy();
        else res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n");
        return;
      }
      const version = BigInt(body.version.text);
      const held = versions.get(body.key);
      res.setHeader("Content-Type", "application/json");
      if (body.op === "write" && held !== undefined && held !== version) {
        res.end(
          `{"val":"","version":-1,"err":"given version (${version}) is different from the existing (${held})"}`,
        );
        return;
      }
      if (body.op === "write") {
        versions.set(body.key, version);
        data.set(body.key, String(body.val));
      }
      res.end(
        `{"val":${JSON.stringify(data.get(body.key) ?? "")},"version":${versions.get(body.key) ?? -1},"err":""}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, data, server };
}

interface Replay {
  code1: number | string;
  code2: number | string;
  events1: DemoEvent[];
  events2: DemoEvent[];
}

/**
 * Client 1 takes the lock and is frozen (SIGSTOP) until client 2, after client 1's lease expired, has
 * taken the lock, written and exited; then client 1 is continued and writes too.
 */
async function replay(
  endpoints: string[],
  storageUrl: string,
  run: string,
  flags: string[],
): Promise<Replay> {
  const common = [
    "--endpoints",
    endpoints.join(","),
    "--storage",
    storageUrl,
    "--lock",
    `/seed-lock-${run}`,
    "--key",
    `seed-key-${run}`,
    "--ttl",
    "1",
    "--timeout",
    "40",
    ...flags,
  ];
  const c1 = ClientProcess.start("client 1", ["1", ...common, "--pause", "sigstop"], () => {});
  let c2: ClientProcess | undefined;
  try {
    await c1.waitFor("pause", 30_000);
    c1.freeze();
    c2 = ClientProcess.start("client 2", ["2", ...common, "--pause", "none"], () => {});
    const code2 = await c2.waitExit(40_000);
    c1.thaw();
    const code1 = await c1.waitExit(30_000);
    return { code1, code2, events1: c1.events, events2: c2.events };
  } finally {
    await Promise.all([c1.kill(), c2?.kill()]);
  }
}

function leaseOf(events: DemoEvent[]): bigint {
  const e = events.find((x) => x.kind === "connected");
  assert.ok(e?.leaseId, "the client reported its lease");
  return BigInt(`0x${e.leaseId}`);
}

/** Runs `count` replays, `parallel` at a time (each on its own lock and key). */
async function replays(
  count: number,
  parallel: number,
  one: (run: number) => Promise<Replay>,
): Promise<Replay[]> {
  const out: Replay[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, (_, j) => one(i + j));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

describe("the seed's protocol between real processes", { timeout: 170_000 }, () => {
  let lockd: LockdInstance | undefined;
  let storage: StorageHandle | undefined;
  const servers: Server[] = [];
  before(async () => {
    [lockd, storage] = await Promise.all([startLockd(), startStorage()]);
  });
  after(async () => {
    for (const s of servers) s.closeAllConnections();
    await Promise.allSettled([
      lockd?.stop(),
      storage?.stop(),
      ...servers.map((s) => new Promise((r) => s.close(r))),
    ]);
  });

  test("--protocol seed replays the seed against a contrib/lock-like storage; without it, an error names the flag", async () => {
    assert.ok(lockd);
    const drop = await seedLikeStorage("drop");
    const notFound = await seedLikeStorage("404");
    servers.push(drop.server, notFound.server);
    const r = await replay(lockd.endpoints, drop.url, "contrib", ["--protocol", "seed"]);
    assert.deepEqual([r.code2, r.code1], [0, 3], "client 2 accepted, client 1 refused");
    assert.equal(drop.data.get("seed-key-contrib"), "value from client 2");
    assert.match(r.events1.find((e) => e.kind === "refused")?.what ?? "", /is different from the existing/);

    for (const [name, storageUrl, how] of [
      ["drop", drop.url, /dropped the connection on PUT \/v1\/kv/],
      ["404", notFound.url, /answered 404, not fencelock's API, to PUT \/v1\/kv/],
    ] as const) {
      const c = ClientProcess.start(
        "client 2",
        [
          "2",
          "--endpoints",
          lockd.endpoints.join(","),
          "--storage",
          storageUrl,
          "--key",
          `v1-${name}`,
          "--ttl",
          "1",
        ],
        () => {},
      );
      try {
        assert.equal(await c.waitExit(40_000), 1);
        const error = c.events.find((e) => e.kind === "error")?.what ?? "";
        assert.match(error, how);
        assert.match(error, /does not seem to speak fencelock's \/v1 API.*run with --protocol seed/);
      } finally {
        await c.kill();
      }
    }
  });

  test("--protocol seed against our storage: the token travels as version", async () => {
    assert.ok(lockd && storage);
    const r = await replay(lockd.endpoints, storage.url, "ours", ["--protocol", "seed"]);
    assert.deepEqual([r.code2, r.code1], [0, 3]);
    // Both writes went through POST / (the storage counts requests by route), none through /v1/kv.
    const metrics = await (await fetch(`${storage.url}/metrics`)).text();
    assert.match(metrics, /fencelock_storage_requests_total\{route="seed",status="200"\} 1\n/);
    assert.match(metrics, /fencelock_storage_requests_total\{route="seed",status="409"\} 1\n/);
    assert.doesNotMatch(metrics, /requests_total\{route="kv"/);
    const client = new StorageClient({ url: storage.url });
    try {
      assert.equal((await client.read("seed-key-ours"))?.toString(), "value from client 2");
      const writes = (await client.audit({ limit: 1000 })).filter((e) => e.key === "seed-key-ours");
      const token2 = r.events2.find((e) => e.kind === "acquired")?.token;
      assert.deepEqual(
        writes.map((w) => [w.token, w.accepted]),
        [
          [token2, true],
          [r.events1.find((e) => e.kind === "acquired")?.token, false],
        ],
      );
    } finally {
      client.close();
    }
  });

  // The seed's own scheme, stood in for: before lockd granted growing lease IDs, client 1's (random)
  // lease ID was the larger one in about half of the runs, and its late write replaced client 2's. With
  // 12 runs a lockd that still drew IDs at random passes with probability 2^-12.
  test("lease IDs as version, paused holder, lockd + our storage: client 2's write is never lost (12 runs)", async () => {
    assert.ok(lockd && storage);
    const { endpoints } = lockd;
    const url = storage.url;
    const runs = await replays(12, 3, (run) =>
      replay(endpoints, url, `lease-${run}`, ["--protocol", "seed", "--token-source", "lease"]),
    );
    const client = new StorageClient({ url });
    try {
      const lost: string[] = [];
      for (const [run, r] of runs.entries()) {
        const value = (await client.read(`seed-key-lease-${run}`))?.toString();
        if (value !== "value from client 2")
          lost.push(`run ${run}: holds "${value}" (client 1 exited ${r.code1})`);
      }
      assert.deepEqual(lost, [], `client 2's write was lost in ${lost.length} of ${runs.length} runs`);
      for (const [run, r] of runs.entries()) {
        const [lease1, lease2] = [leaseOf(r.events1), leaseOf(r.events2)];
        assert.ok(
          lease2 > lease1,
          `run ${run}: client 2's lease ${lease2} is not above client 1's ${lease1}`,
        );
        assert.deepEqual([r.code2, r.code1], [0, 3], `run ${run}`);
        assert.equal(r.events2.find((e) => e.kind === "write")?.token, lease2, "client 2 sent its lease ID");
      }
    } finally {
      client.close();
    }
  });
});
