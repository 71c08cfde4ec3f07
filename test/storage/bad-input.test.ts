/**
 * Every bad input of the issue, each its own test, against a real `fencelock storage` child process
 * (durable, with --auth-token): each gets a clear 4xx, the server keeps serving, and at the end the
 * database holds exactly what the valid requests left (read straight from the SQLite file).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { StorageClient } from "../../src/storage/index.js";
import { type StorageHandle, startStorage } from "../../src/testkit/index.js";
import { http, type Reply, rawExchange } from "./helpers.js";

const TOKEN = "bad-input-secret";
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { "Content-Type": "application/json", ...AUTH };
const LIMIT_BODY = 1024 * 1024 + 64 * 1024;

let storage: StorageHandle;
let client: StorageClient;

const seed = (body: string | Buffer, headers: Record<string, string> = JSON_AUTH) =>
  http(storage.port, "POST", "/", { headers, body });

/** Asserts that the server process is alive and still answers. */
async function stillServing(): Promise<void> {
  assert.ok(storage.child.running, "the server is still running");
  assert.equal((await http(storage.port, "GET", "/healthz")).status, 200);
}

/** Asserts a refusal (status and, if given, registry code) and that the server still answers. */
async function refused(reply: Reply, status: number, code: string | undefined): Promise<void> {
  assert.equal(reply.status, status, reply.text.slice(0, 300));
  if (code !== undefined) assert.equal(reply.json?.code, code, reply.text.slice(0, 300));
  await stillServing();
}

before(async () => {
  storage = await startStorage({ authToken: TOKEN });
  client = new StorageClient({ url: storage.url, authToken: TOKEN });
  // The valid requests whose effects must be all that is stored at the end.
  assert.equal((await seed('{"op":"write","key":"key0","val":"v1","version":10}')).status, 200);
  await client.write("k1", "hello", { token: 5n });
});

after(async () => {
  client?.close();
  await storage?.stop();
});

describe("seed protocol body", () => {
  const cases: [string, string, number, string][] = [
    ["malformed JSON", '{"op":"write",key:"key0"}', 400, "BAD_REQUEST"],
    ["truncated JSON", '{"op":"write","key":"key0","val":"x","version":11', 400, "BAD_REQUEST"],
    ["an empty body", "", 400, "BAD_REQUEST"],
    ["a JSON array", '[{"op":"write","key":"key0","val":"x","version":11}]', 400, "BAD_REQUEST"],
    ["a JSON string", '"write key0"', 400, "BAD_REQUEST"],
    ["unknown op", '{"op":"delete","key":"key0","version":11}', 400, "BAD_REQUEST"],
    ["missing op", '{"key":"key0","val":"x","version":11}', 400, "BAD_REQUEST"],
    ["missing key", '{"op":"write","val":"x","version":11}', 400, "BAD_REQUEST"],
    ["missing val on a write", '{"op":"write","key":"key0","version":11}', 400, "BAD_REQUEST"],
    ["key of the wrong type", '{"op":"write","key":7,"val":"x","version":11}', 400, "BAD_REQUEST"],
    ["val of the wrong type", '{"op":"write","key":"key0","val":{"a":1},"version":11}', 400, "BAD_REQUEST"],
    ["version of the wrong type", '{"op":"write","key":"key0","val":"x","version":true}', 400, "BAD_REQUEST"],
    ["op of the wrong type", '{"op":1,"key":"key0","val":"x","version":11}', 400, "BAD_REQUEST"],
    ["a negative token", '{"op":"write","key":"key0","val":"x","version":-11}', 400, "BAD_REQUEST"],
    ["a fractional token", '{"op":"write","key":"key0","val":"x","version":11.5}', 400, "BAD_REQUEST"],
    ["a token of letters", '{"op":"write","key":"key0","val":"x","version":"eleven"}', 400, "BAD_REQUEST"],
    ["a bare word as token", '{"op":"write","key":"key0","val":"x","version":eleven}', 400, "BAD_REQUEST"],
    [
      "a token above int64",
      '{"op":"write","key":"key0","val":"x","version":9223372036854775808}',
      400,
      "BAD_REQUEST",
    ],
    ["a token in exponent form", '{"op":"write","key":"key0","val":"x","version":1e3}', 400, "BAD_REQUEST"],
    [
      "a duplicate field",
      '{"op":"write","key":"key0","val":"x","version":11,"version":1}',
      400,
      "BAD_REQUEST",
    ],
    ["a misspelt field", '{"op":"write","key":"key0","val":"x","verison":11}', 400, "BAD_REQUEST"],
    [
      "nesting too deep",
      `{"op":"write","key":"key0","val":${"[".repeat(100)}${"]".repeat(100)}}`,
      400,
      "BAD_REQUEST",
    ],
    ["an empty key", '{"op":"write","key":"","val":"x","version":11}', 400, "BAD_REQUEST"],
    [
      "a lone surrogate in the key",
      '{"op":"write","key":"k\\ud800","val":"x","version":11}',
      400,
      "BAD_REQUEST",
    ],
    ["a write without a token", '{"op":"write","key":"key0","val":"x","version":0}', 400, "TOKEN_REQUIRED"],
    ["a stale token", '{"op":"write","key":"key0","val":"stale","version":9}', 409, "STALE_FENCING_TOKEN"],
  ];
  for (const [name, body, status, code] of cases) {
    test(name, async () => refused(await seed(body), status, code));
  }

  test("a key over the limit", async () => {
    const body = JSON.stringify({ op: "write", key: "k".repeat(1025), val: "x", version: 11 });
    await refused(await seed(body), 413, "PAYLOAD_TOO_LARGE");
  });
  test("a value over the limit", async () => {
    const body = JSON.stringify({ op: "write", key: "key0", val: "v".repeat(1024 * 1024 + 1), version: 11 });
    await refused(await seed(body), 413, "PAYLOAD_TOO_LARGE");
  });
  test("a body over the limit", async () => {
    const body = `{"op":"write","key":"key0","val":"${"v".repeat(LIMIT_BODY)}","version":11}`;
    await refused(await seed(body), 413, "PAYLOAD_TOO_LARGE");
  });
  test("a body far over the limit is refused without reading it", async () => {
    const reply = await rawExchange(
      storage.port,
      `POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${100 * LIMIT_BODY}\r\n\r\n{"op":`,
    );
    assert.match(reply, /^HTTP\/1\.1 413 /);
    await stillServing();
  });
  test("invalid UTF-8 in the body", async () => {
    const body = Buffer.concat([
      Buffer.from('{"op":"write","key":"key'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","val":"x","version":11}'),
    ]);
    await refused(await seed(body), 400, "BAD_REQUEST");
  });
  test("a wrong content type", async () => {
    const body = '{"op":"write","key":"key0","val":"x","version":11}';
    await refused(await seed(body, { "Content-Type": "text/plain", ...AUTH }), 415, "UNSUPPORTED_MEDIA_TYPE");
    await refused(
      await seed(body, { "Content-Type": "application/json; charset=latin1", ...AUTH }),
      415,
      undefined,
    );
    await refused(await seed(body, { ...AUTH }), 415, "UNSUPPORTED_MEDIA_TYPE");
  });
});

describe("routes, methods, headers", () => {
  test("GET /", async () => {
    const r = await http(storage.port, "GET", "/", { headers: AUTH });
    await refused(r, 405, "METHOD_NOT_ALLOWED");
    assert.equal(r.headers.allow, "POST");
  });
  test("unknown routes", async () => {
    for (const path of ["/nope", "/v1", "/v1/kv", "/v2/kv/key0", "/healthz/x"]) {
      const r = await http(storage.port, "GET", path, { headers: AUTH });
      await refused(r, 404, "NOT_FOUND");
      assert.equal(r.headers["content-type"], "application/problem+json");
    }
  });
  test("a method a route does not take", async () => {
    await refused(
      await http(storage.port, "DELETE", "/v1/kv/key0", { headers: AUTH }),
      405,
      "METHOD_NOT_ALLOWED",
    );
    await refused(
      await http(storage.port, "POST", "/v1/audit", { headers: AUTH }),
      405,
      "METHOD_NOT_ALLOWED",
    );
  });
  test("a missing bearer token", async () => {
    const r = await seed('{"op":"write","key":"key0","val":"evil","version":99}', {
      "Content-Type": "application/json",
    });
    await refused(r, 401, "UNAUTHORIZED");
    await refused(await http(storage.port, "GET", "/v1/kv/key0"), 401, "UNAUTHORIZED");
  });
  test("a wrong bearer token", async () => {
    const headers = { "Content-Type": "application/json", Authorization: "Bearer bad-input-secreT" };
    await refused(
      await seed('{"op":"write","key":"key0","val":"evil","version":99}', headers),
      401,
      "UNAUTHORIZED",
    );
    const put = { headers: { Authorization: "Basic Zm9vOmJhcg==", "Fencing-Token": "99" }, body: "evil" };
    await refused(await http(storage.port, "PUT", "/v1/kv/key0", put), 401, "UNAUTHORIZED");
  });
  test("bad Fencing-Token headers", async () => {
    for (const token of ["abc", "-1", "1.5", "1e3", "9223372036854775808", "0", "", "0x10"]) {
      const r = await http(storage.port, "PUT", "/v1/kv/k1", {
        headers: { ...AUTH, "Fencing-Token": token },
        body: "x",
      });
      await refused(r, 400, "BAD_REQUEST");
    }
  });
  test("a key over the limit in the path", async () => {
    const r = await http(storage.port, "PUT", `/v1/kv/${"k".repeat(1025)}`, {
      headers: { ...AUTH, "Fencing-Token": "99" },
      body: "x",
    });
    await refused(r, 413, "PAYLOAD_TOO_LARGE");
  });
  test("invalid UTF-8 in a key: percent-encoded and raw", async () => {
    const r = await http(storage.port, "PUT", "/v1/kv/bad%FF", {
      headers: { ...AUTH, "Fencing-Token": "99" },
      body: "x",
    });
    await refused(r, 400, "BAD_REQUEST");
    const raw = Buffer.concat([
      Buffer.from("GET /v1/kv/bad"),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(` HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`),
    ]);
    assert.match(await rawExchange(storage.port, raw), /^HTTP\/1\.1 400 /);
    await stillServing();
  });
  test("invalid UTF-8 in a Fence header", async () => {
    const raw = Buffer.concat([
      Buffer.from(
        `PUT /v1/kv/k1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nFencing-Token: 99\r\nFence: f`,
      ),
      Buffer.from([0xff]),
      Buffer.from("\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"),
    ]);
    assert.match(await rawExchange(storage.port, raw), /^HTTP\/1\.1 400 /);
    await stillServing();
  });
  test("bytes that are not HTTP", async () => {
    const reply = await rawExchange(storage.port, "\x00\x01\x02 not http at all\r\n\r\n");
    assert.match(reply, /^HTTP\/1\.1 400 /);
    await stillServing();
  });
});

describe("1,000 concurrent clients on one key", () => {
  test("every request is answered, the fence only moves up, and the highest token wins", async () => {
    const n = 1000;
    const tokens = Array.from({ length: n }, (_, i) => i + 1);
    for (let i = tokens.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [tokens[i], tokens[j]] = [tokens[j] as number, tokens[i] as number];
    }
    const replies = await Promise.all(
      tokens.map((tok) =>
        http(storage.port, "POST", "/", {
          headers: JSON_AUTH,
          body: `{"op":"write","key":"crowd","val":"v${tok}","version":${tok}}`,
          timeoutMs: 30_000,
        }).then((r) => ({ tok, r })),
      ),
    );
    const accepted = replies.filter((x) => x.r.status === 200).map((x) => x.tok);
    const rejected = replies.filter((x) => x.r.status === 409);
    assert.equal(accepted.length + rejected.length, n, "every reply is 200 or 409");
    assert.ok(accepted.includes(n), "the highest token is always accepted");
    for (const x of rejected) assert.ok(Number(x.r.json?.version) > x.tok, "refused only below the max");
    const r = await seed('{"op":"read","key":"crowd"}');
    assert.equal(r.text, `{"val":"v${n}","version":${n},"err":""}`);
    const entries = [];
    for (let afterSeq = 0, i = 0; i < 10; i++) {
      const page = await client.audit({ after: afterSeq, limit: 1000 });
      if (page.length === 0) break;
      entries.push(...page.filter((e) => e.key === "crowd"));
      afterSeq = page[page.length - 1]?.seq ?? afterSeq;
    }
    assert.equal(entries.length, n, "one audit entry per request");
    const acceptedInOrder = entries.filter((e) => e.accepted).map((e) => e.token as bigint);
    assert.equal(acceptedInOrder.length, accepted.length);
    for (let i = 1; i < acceptedInOrder.length; i++) {
      assert.ok(
        (acceptedInOrder[i] as bigint) >= (acceptedInOrder[i - 1] as bigint),
        "accepted tokens never go down",
      );
    }
  });
});

describe("after all of it", () => {
  test("the database holds exactly what the valid requests left", async () => {
    assert.ok(storage.child.running);
    await storage.child.stop();
    const db = new Database(join(storage.dataDir as string, "storage.sqlite"), { readonly: true });
    try {
      db.defaultSafeIntegers(true);
      const kv = db
        .prepare(
          "SELECT name AS key, CAST(value AS TEXT) AS value FROM names WHERE value IS NOT NULL ORDER BY name",
        )
        .all();
      assert.deepEqual(kv, [
        { key: "crowd", value: "v1000" },
        { key: "k1", value: "hello" },
        { key: "key0", value: "v1" },
      ]);
      const fences = db
        .prepare("SELECT name, max_token FROM names WHERE max_token IS NOT NULL ORDER BY name")
        .all();
      assert.deepEqual(fences, [
        { name: "crowd", max_token: 1000n },
        { name: "k1", max_token: 5n },
        { name: "key0", max_token: 10n },
      ]);
      const decisions = db
        .prepare(
          "SELECT key, accepted, COUNT(*) AS n FROM audit GROUP BY key, accepted ORDER BY key, accepted",
        )
        .all() as { key: string; accepted: bigint; n: bigint }[];
      const notCrowd = decisions.filter((d) => d.key !== "crowd");
      assert.deepEqual(notCrowd, [
        { key: "k1", accepted: 1n, n: 1n },
        { key: "key0", accepted: 0n, n: 2n }, // the refused write without a token, and the stale one
        { key: "key0", accepted: 1n, n: 1n },
      ]);
    } finally {
      db.close();
    }
    await storage.restart();
  });
});
