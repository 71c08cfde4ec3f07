/**
 * Unit tests without HTTP: token text, the raw-number JSON parser, and the fencing rule on both stores
 * (memory, and SQLite in a temporary directory).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { JsonSyntaxError, parseJson, RawNumber } from "../../src/storage/json.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { SqliteStore } from "../../src/storage/sqlite-store.js";
import type { Store } from "../../src/storage/store.js";
import { parseTokenText } from "../../src/storage/token.js";

describe("token text", () => {
  test("int64 values parse exactly", () => {
    for (const text of ["0", "1", "4703569812595502727", "9223372036854775807"]) {
      assert.deepEqual(parseTokenText(text), { ok: true, token: BigInt(text) });
    }
  });
  test("everything else is refused with a reason", () => {
    const cases: [string, RegExp][] = [
      ["-1", /negative/],
      ["1.5", /fraction/],
      ["1e5", /exponent/],
      ["1.0E+2", /exponent/],
      ["9223372036854775808", /above the int64/],
      ["99999999999999999999999", /above the int64/],
      ["007", /leading zeros/],
      ["abc", /decimal digits/],
      ["", /decimal digits/],
      [" 5", /decimal digits/],
    ];
    for (const [text, reason] of cases) {
      const r = parseTokenText(text);
      assert.equal(r.ok, false, text);
      if (!r.ok) assert.match(r.reason, reason, text);
    }
  });
});

describe("raw-number JSON", () => {
  test("numbers keep their source text", () => {
    const doc = parseJson('{"version":9223372036854775807,"f":-1.5e3,"a":[1,2]}') as Record<string, unknown>;
    assert.deepEqual(doc.version, new RawNumber("9223372036854775807"));
    assert.deepEqual(doc.f, new RawNumber("-1.5e3"));
    assert.deepEqual(doc.a, [new RawNumber("1"), new RawNumber("2")]);
  });
  test("strings, escapes and literals decode like JSON.parse", () => {
    const text = '{"s":"a\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00","t":true,"f":false,"n":null,"__proto__":"x"}';
    const doc = parseJson(text) as Record<string, unknown>;
    const expected = JSON.parse(text) as Record<string, unknown>;
    assert.equal(doc.s, expected.s);
    assert.equal(doc.t, true);
    assert.equal(doc.f, false);
    assert.equal(doc.n, null);
    assert.equal(Object.getOwnPropertyDescriptor(doc, "__proto__")?.value, "x");
  });
  test("malformed input throws", () => {
    const bad = [
      "",
      "{",
      '{"a":1',
      '{"a":1,}',
      "[1,]",
      '{"a" 1}',
      "{a:1}",
      '"\\x"',
      '"a\u0001"',
      "01",
      "1.",
      "tru",
      '{"a":1}x',
      '{"a":1,"a":2}',
      `${"[".repeat(40)}${"]".repeat(40)}`,
    ];
    for (const text of bad) assert.throws(() => parseJson(text), JsonSyntaxError, JSON.stringify(text));
  });
});

/** A store of each kind; `close` also removes the SQLite store's directory. */
const kinds: [string, (allowUnfenced?: boolean) => Store][] = [
  ["memory", (allowUnfenced) => new MemoryStore({ allowUnfenced })],
  [
    "SQLite",
    (allowUnfenced) => {
      const dir = mkdtempSync(join(tmpdir(), "fencelock-rules-"));
      const store = new SqliteStore({ dataDir: dir, allowUnfenced });
      const close = store.close.bind(store);
      store.close = () => {
        close();
        rmSync(dir, { recursive: true, force: true });
      };
      return store;
    },
  ],
];

for (const [kind, open] of kinds)
  describe(`the fencing rule (${kind} store)`, () => {
    const write = (s: Store, key: string, token: bigint | null, value: string, fence = key) =>
      s.transaction(() => s.decide({ op: "write", key, fence, token, value: Buffer.from(value) }));

    test("accepts a token >= the max, rejects a lower one, and a rejection writes only its audit row", () => {
      const s = open();
      try {
        assert.equal(write(s, "k", 5n, "a").kind, "written");
        assert.equal(write(s, "k", 5n, "b").kind, "written", "an equal token is the same holder");
        assert.equal(write(s, "k", 9n, "c").kind, "written", "a newer token is accepted (the seed's != bug)");
        const stale = write(s, "k", 6n, "d");
        assert.equal(stale.kind, "stale");
        if (stale.kind === "stale") assert.equal(stale.maxToken, 9n);
        assert.deepEqual(s.read("k", "k"), { value: Buffer.from("c"), maxToken: 9n });
        const audit = s.auditAfter(0, 100);
        assert.deepEqual(
          audit.map((a) => [a.seq, a.op, a.key, a.fence, a.token, a.previousMax, a.accepted, a.reason]),
          [
            [1, "write", "k", "k", 5n, null, true, "accepted: first token 5"],
            [2, "write", "k", "k", 5n, 5n, true, "accepted: token 5 = max"],
            [3, "write", "k", "k", 9n, 5n, true, "accepted: token 9 > max 5"],
            [4, "write", "k", "k", 6n, 9n, false, "rejected: stale token 6 < max 9"],
          ],
        );
        assert.deepEqual(
          s.auditAfter(2, 1).map((a) => [a.seq, a.value?.toString()]),
          [[3, "c"]],
          "after and limit select rows; the value preview is kept",
        );
      } finally {
        s.close();
      }
    });

    test("a fenced read advances the fence; a shared fence guards many keys", () => {
      const s = open();
      try {
        write(s, "a", 3n, "x", "F");
        const read = s.transaction(() => s.decide({ op: "read", key: "a", fence: "F", token: 8n }));
        assert.equal(read.kind, "read");
        assert.equal(write(s, "b", 7n, "y", "F").kind, "stale", "another key under the same fence");
        assert.equal(s.maxToken("F"), 8n);
        assert.equal(s.maxToken("a"), null, "the key's own fence was never used");
      } finally {
        s.close();
      }
    });

    test("a write without a token is refused unless unfenced writes are allowed", () => {
      const strict = open();
      const loose = open(true);
      try {
        assert.equal(write(strict, "k", null, "v").kind, "token-required");
        assert.equal(strict.read("k", "k").value, null);
        write(loose, "k", 4n, "fenced");
        const r = write(loose, "k", null, "unfenced");
        assert.deepEqual(r.kind === "written" && r.maxToken, 4n, "the fence is reported, not changed");
        assert.deepEqual(loose.read("k", "k"), { value: Buffer.from("unfenced"), maxToken: 4n });
      } finally {
        strict.close();
        loose.close();
      }
    });

    test("a failed transaction leaves nothing behind", () => {
      const s = open();
      try {
        assert.throws(() =>
          s.transaction(() => {
            s.decide({ op: "write", key: "k", fence: "k", token: 1n, value: Buffer.from("v") });
            throw new Error("boom");
          }),
        );
        assert.deepEqual(s.read("k", "k"), { value: null, maxToken: null });
        assert.deepEqual(s.auditAfter(0, 10), []);
      } finally {
        s.close();
      }
    });
  });

describe("the memory store's columnar audit log", () => {
  test("keeps every entry exactly across chunk and slab boundaries, and drops rolled-back ones", () => {
    const s = new MemoryStore();
    const n = 20_000;
    // Values of 0..300 bytes: previews keep at most 256, and 20,000 of them span several 1 MiB slabs.
    const payload = (i: number) => Buffer.alloc(i % 301, String.fromCharCode(97 + (i % 26)));
    for (let i = 0; i < n; i++) {
      const token = BigInt(1 + Math.floor(i / 2));
      s.transaction(() =>
        s.decide({ op: "write", key: `k${i % 7}`, fence: `f${i % 3}`, token, value: payload(i) }),
      );
    }
    assert.throws(() =>
      s.transaction(() => {
        s.decide({ op: "write", key: "late", fence: "late", token: 1n, value: Buffer.from("x") });
        throw new Error("rolled back");
      }),
    );
    for (const at of [0, 1, 16_383, 16_384, 16_385, n - 1]) {
      const [row] = s.auditAfter(at, 1);
      const i = at;
      assert.ok(row, `entry ${i + 1}`);
      assert.equal(row.seq, i + 1);
      assert.equal(row.key, `k${i % 7}`);
      assert.equal(row.fence, `f${i % 3}`);
      assert.equal(row.token, BigInt(1 + Math.floor(i / 2)));
      assert.deepEqual(row.value, payload(i).subarray(0, 256));
    }
    assert.deepEqual(s.auditAfter(n, 10), [], "the rolled-back entry is gone");
    assert.equal(s.auditAfter(n - 5, 100).length, 5);
    const reads = s.transaction(() => s.decide({ op: "read", key: "k0", fence: "f0", token: 99_999n }));
    assert.equal(reads.seq, n + 1, "the next entry takes the rolled-back one's sequence number");
    assert.equal(s.auditAfter(n, 1)[0]?.value, null, "a read keeps no value");
  });
});

describe("audit retention (auditKeep)", () => {
  const writeMany = (s: Store, from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      s.transaction(() =>
        s.decide({ op: "write", key: "k", fence: "k", token: BigInt(i + 1), value: Buffer.from(`v${i}`) }),
      );
    }
  };

  test("SQLite keeps at least the newest N entries, drops older ones, and numbering goes on after a reopen", () => {
    const dir = mkdtempSync(join(tmpdir(), "fencelock-keep-"));
    try {
      let s = new SqliteStore({ dataDir: dir, auditKeep: 100 });
      for (let i = 0; i < 300; i++) {
        writeMany(s, i, 1);
        const count = s.auditAfter(0, 1000).length;
        assert.ok(count >= Math.min(i + 1, 100), `after ${i + 1} writes only ${count} entries are kept`);
      }
      writeMany(s, 300, 700);
      const kept = s.auditAfter(0, 1000);
      assert.ok(kept.length >= 100 && kept.length <= 113, `${kept.length} entries kept`);
      assert.equal(kept.at(-1)?.seq, 1000);
      assert.deepEqual(
        kept.map((r) => r.seq),
        Array.from({ length: kept.length }, (_, i) => 1001 - kept.length + i),
        "the newest entries, contiguous",
      );
      assert.equal(kept.at(-1)?.value?.toString(), "v999");
      s.close();
      s = new SqliteStore({ dataDir: dir, auditKeep: 100 });
      writeMany(s, 1000, 1);
      assert.equal(s.auditAfter(1000, 10)[0]?.seq, 1001, "sequence numbers are never reused");
      s.close();
      // Reopened with a much smaller bound, it catches up at most 1,024 entries a batch.
      s = new SqliteStore({ dataDir: dir });
      writeMany(s, 1001, 3000);
      s.close();
      s = new SqliteStore({ dataDir: dir, auditKeep: 10 });
      const oldest = () => s.auditAfter(0, 1)[0]?.seq ?? 0;
      const before = oldest();
      writeMany(s, 4001, 1);
      assert.equal(oldest(), before + 1024);
      writeMany(s, 4002, 3);
      assert.equal(oldest(), 4005 - 10 + 1, "caught up: the newest 10 are left");
      s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("memory drops whole chunks older than the newest N; reads from before them start at the oldest kept", () => {
    const s = new MemoryStore({ auditKeep: 1000 });
    writeMany(s, 0, 40_000);
    const first = s.auditAfter(0, 1)[0];
    assert.ok(first, "something is kept");
    assert.ok(first.seq > 16_384 && first.seq <= 39_001, `oldest kept is ${first.seq}`);
    assert.equal(first.value?.toString(), `v${first.seq - 1}`, "its preview survived the dropped slabs");
    const newest = s.auditAfter(39_000, 1000);
    assert.equal(newest.length, 1000);
    assert.deepEqual(
      newest.map((r) => [r.seq, r.value?.toString()]),
      Array.from({ length: 1000 }, (_, i) => [39_001 + i, `v${39_000 + i}`]),
    );
    const all = new MemoryStore();
    writeMany(all, 0, 20_000);
    assert.equal(all.auditAfter(0, 1)[0]?.seq, 1, "without auditKeep nothing is dropped");
  });
});
