/**
 * The storage server's HTTP transport (`src/storage/transport.ts`: `node:http` and what the server adds
 * above it), driven byte by byte over real sockets against an in-process server: chunked bodies,
 * `Expect: 100-continue`, the request-smuggling and header guards, size limits, pipelining and
 * keep-alive, `Connection: close` and HTTP/1.0, HEAD framing, idle and header timeouts, clients that
 * vanish mid-request, and the findings of the adversarial run of issue 12 against the hand-written
 * parser this replaced. Every refusal is checked for its status, its problem+json `code`, the closed
 * connection, an unchanged store and a server that still answers.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, test } from "node:test";
import { http, startInProcess } from "./helpers.js";

/** One reply as it came off the wire. */
interface WireReply {
  status: number;
  /** The status line and headers, as latin1 text (without the blank line). */
  head: string;
  /** Header values by lower-case name; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  json: Record<string, unknown> | undefined;
}

/**
 * A persistent client connection: send bytes, read replies framed by Content-Length (a reply without
 * one has no body, which covers `100 Continue`), or wait for the server to close. Every wait is bounded.
 */
class Wire {
  private buf = Buffer.alloc(0);
  closed = false;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    // A reset after the server closed is fine: what was received is the answer.
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** Connects to the server; rejects after `timeoutMs`. */
  static open(port: number, timeoutMs = 2000): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("connect timed out"));
      }, timeoutMs);
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new Wire(socket));
      });
    });
  }

  /** Writes bytes (strings as latin1, so a test controls every byte) and waits until they are flushed. */
  write(bytes: string | Buffer): Promise<void> {
    const data = typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes;
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Bytes received and not yet taken by `reply`. */
  get unread(): string {
    return this.buf.toString("latin1");
  }

  /** Waits until `probe` returns a value; throws if the connection closes first or time runs out. */
  private async until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`${what}: the server closed the connection; unread ${this.unread}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out; unread ${JSON.stringify(this.unread)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Reads the next reply; `headOnly` for the reply to a HEAD request (Content-Length but no body). */
  reply(opts: { headOnly?: boolean; timeoutMs?: number } = {}): Promise<WireReply> {
    return this.until(() => this.take(opts.headOnly === true), opts.timeoutMs ?? 3000, "reading a reply");
  }

  /** Reads `n` replies in order. */
  async replies(n: number): Promise<WireReply[]> {
    const out: WireReply[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply());
    return out;
  }

  /** Waits for the server to close the connection; throws if it is still open after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<void> {
    await this.until(() => (this.closed ? true : undefined), timeoutMs, "waiting for the close");
  }

  /** Waits for the server to close the connection, then parses every reply it sent. */
  async repliesUntilClose(timeoutMs: number): Promise<WireReply[]> {
    await this.closedWithin(timeoutMs);
    const out: WireReply[] = [];
    for (let r = this.take(false); r !== undefined; r = this.take(false)) out.push(r);
    assert.equal(this.unread, "", "the bytes after the last whole reply");
    return out;
  }

  /** Whether the server leaves the connection open for `ms` (it neither closes it nor sends anything). */
  async quietFor(ms: number): Promise<boolean> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return !this.closed && this.buf.length === 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Parses one complete reply off the front of the buffer, if there is one. */
  private take(headOnly: boolean): WireReply | undefined {
    const end = this.buf.indexOf("\r\n\r\n", 0, "latin1");
    if (end === -1) return undefined;
    const head = this.buf.toString("latin1", 0, end);
    const lines = head.split("\r\n");
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] as string);
    if (m === null) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const length = headOnly ? 0 : Number(headers["content-length"] ?? "0");
    if (this.buf.length < end + 4 + length) return undefined;
    const body = Buffer.from(this.buf.subarray(end + 4, end + 4 + length));
    this.buf = this.buf.subarray(end + 4 + length);
    const text = body.toString("utf8");
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: Number(m[1]), head, headers, body, text, json };
  }
}

/** The raw bytes of a fenced `PUT /v1/kv/{key}` with a Content-Length body. */
function put(key: string, token: number, value: string, extra = ""): string {
  return (
    `PUT /v1/kv/${key} HTTP/1.1\r\nHost: t\r\nFencing-Token: ${token}\r\n${extra}` +
    `Content-Length: ${Buffer.byteLength(value, "latin1")}\r\n\r\n${value}`
  );
}

/** The raw bytes of a GET on the same connection. */
function get(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
}

/** Asserts a refusal of the HTTP layer: status, problem+json `code`, `Connection: close`. */
function assertRefusal(r: WireReply, status: number, code: string): void {
  assert.equal(r.status, status, r.head + r.text);
  assert.equal(r.headers["content-type"], "application/problem+json");
  assert.equal(r.json?.code, code, r.text);
  assert.equal(r.json?.status, status, r.text);
  assert.equal(r.headers.connection, "close");
}

/** Asserts that the server still answers on a fresh connection. */
async function stillServing(port: number): Promise<void> {
  const r = await http(port, "GET", "/healthz", { timeoutMs: 2000 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: "ok" });
}

/** Asserts that a key was never written (the store did not change). */
async function notStored(port: number, key: string): Promise<void> {
  const r = await http(port, "GET", `/v1/kv/${key}`, { timeoutMs: 2000 });
  assert.equal(r.status, 404, `${key} was stored: ${r.text}`);
  assert.equal(r.json?.code, "KEY_NOT_FOUND");
}

/** Asserts that a key holds exactly `value`. */
async function stored(port: number, key: string, value: string): Promise<void> {
  const r = await http(port, "GET", `/v1/kv/${key}`, { timeoutMs: 2000 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, value);
}

/**
 * Sends `bytes` on a fresh connection and expects exactly one refusal with `status` and `code`, then the
 * close; the server must keep serving.
 */
async function expectRefusal(port: number, bytes: string | Buffer, status: number, code: string) {
  const w = await Wire.open(port);
  try {
    await w.write(bytes).catch(() => {
      // The server may close before a long request is fully written; its reply is what counts.
    });
    const r = await w.reply();
    assertRefusal(r, status, code);
    await w.closedWithin(2500);
    assert.equal(w.unread, "", "nothing after the refusal");
  } finally {
    w.destroy();
  }
  await stillServing(port);
}

describe("chunked request bodies", () => {
  test("chunks with an extension and a trailer store exactly the concatenated bytes", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(
      "PUT /v1/kv/chunked HTTP/1.1\r\nHost: t\r\nFencing-Token: 7\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5\r\nhello\r\n" +
        "1;x=y\r\n \r\n" +
        "A\r\n0123456789\r\n" +
        "0\r\nX-Checksum: abc\r\n\r\n",
    );
    const r = await w.reply();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { key: "chunked", fence: "chunked", maxToken: "7", seq: r.json?.seq });
    await stored(port, "chunked", "hello 0123456789");
    // The trailer was consumed: the connection is at a request boundary and takes the next one.
    await w.write(get("/v1/kv/chunked"));
    assert.equal((await w.reply()).text, "hello 0123456789");
  });

  test("chunks split across writes at awkward places are reassembled", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    const parts = [
      "PUT /v1/kv/split HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n3",
      "\r",
      "\nab",
      "c\r",
      "\n2\r\nde\r\n0\r",
      "\n\r",
      "\n",
    ];
    for (const p of parts) {
      await w.write(p);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal((await w.reply()).status, 200);
    await stored(port, "split", "abcde");
  });

  test("a chunk size that is not hexadecimal is a 400 and stores nothing", async (t) => {
    const { port } = await startInProcess(t);
    await expectRefusal(
      port,
      "PUT /v1/kv/zz HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "zz\r\nhello\r\n0\r\n\r\n",
      400,
      "BAD_REQUEST",
    );
    await notStored(port, "zz");
  });

  test("a chunk not followed by CRLF is a 400 and stores nothing", async (t) => {
    const { port } = await startInProcess(t);
    await expectRefusal(
      port,
      "PUT /v1/kv/nocrlf HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "3\r\nabcXY0\r\n\r\n",
      400,
      "BAD_REQUEST",
    );
    await notStored(port, "nocrlf");
  });

  test("a chunked value over maxValueBytes is a 413; one at the limit is stored", async (t) => {
    const { port } = await startInProcess(t, { limits: { maxValueBytes: 100 } });
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    const chunk = "x".repeat(60);
    await w.write(
      "PUT /v1/kv/big HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n" +
        `3c\r\n${chunk}\r\n3c\r\n${chunk}\r\n0\r\n\r\n`,
    );
    const r = await w.reply();
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json?.code, "PAYLOAD_TOO_LARGE");
    await notStored(port, "big");
    // The body was within the discard limit, so it was read and dropped and the connection survives.
    assert.equal(r.headers.connection, "keep-alive");
    await w.write(
      "PUT /v1/kv/big HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n" +
        `64\r\n${"y".repeat(100)}\r\n0\r\n\r\n`,
    );
    assert.equal((await w.reply()).status, 200);
    await stored(port, "big", "y".repeat(100));
  });
});

describe("Expect", () => {
  test("100-continue gets the interim reply before the body is sent, then the final one", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(
      "PUT /v1/kv/cont HTTP/1.1\r\nHost: t\r\nFencing-Token: 3\r\nExpect: 100-continue\r\n" +
        "Content-Length: 5\r\n\r\n",
    );
    const interim = await w.reply();
    assert.equal(interim.status, 100);
    assert.equal(interim.head, "HTTP/1.1 100 Continue", "exactly the interim status line, no headers");
    assert.equal(w.unread, "", "no final reply before the body");
    await w.write("hello");
    const r = await w.reply();
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json?.maxToken, "3");
    await stored(port, "cont", "hello");
  });

  test("100-continue with a declared body over the limit gets the 413 at once, without the 100", async (t) => {
    const { port } = await startInProcess(t, { limits: { maxValueBytes: 100 } });
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(
      "PUT /v1/kv/early HTTP/1.1\r\nHost: t\r\nFencing-Token: 3\r\nExpect: 100-continue\r\n" +
        "Content-Length: 101\r\n\r\n",
    );
    const r = await w.reply();
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json?.code, "PAYLOAD_TOO_LARGE");
    assert.equal(r.headers.connection, "close");
    await notStored(port, "early");
  });

  test("any other expectation is a 417 EXPECTATION_FAILED, closes, and stores nothing", async (t) => {
    const { port } = await startInProcess(t);
    await expectRefusal(
      port,
      put("expect", 1, "hello", "Expect: something-else\r\n"),
      417,
      "EXPECTATION_FAILED",
    );
    await notStored(port, "expect");
  });
});

describe("request smuggling guards", () => {
  test("Transfer-Encoding with Content-Length is a 400; neither framing's request runs", async (t) => {
    const { port } = await startInProcess(t);
    // Read by Content-Length, the body is "0\r\n\r\n" + a second PUT; read as chunked, the second PUT
    // is a request of its own. Neither reading may happen.
    const smuggled = put("smuggled", 1, "x");
    await expectRefusal(
      port,
      "PUT /v1/kv/front HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\n" +
        `Content-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      400,
      "BAD_REQUEST",
    );
    await notStored(port, "front");
    await notStored(port, "smuggled");
  });

  // A fenced PUT of "k" up to its framing headers.
  const PUT_K = "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\n";
  const cases: [string, string][] = [
    [
      "two different Content-Length headers",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
    ],
    [
      "Transfer-Encoding: gzip",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding: gzip, chunked",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding: chunked twice",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding in HTTP/1.0",
      "PUT /v1/kv/k HTTP/1.0\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
    ["Content-Length: abc", `${PUT_K}Content-Length: abc\r\n\r\nhello`],
    ["Content-Length: -1", `${PUT_K}Content-Length: -1\r\n\r\nhello`],
    ["Content-Length: +5", `${PUT_K}Content-Length: +5\r\n\r\nhello`],
    ["Content-Length: 5, 5 on one line", `${PUT_K}Content-Length: 5, 5\r\n\r\nhello`],
    // RFC 9112 §6.3 allows merging equal lengths; llhttp refuses any repeat, and so does a proxy that
    // reads the first one only if a later one differs. Refusing both is the safe reading.
    ["two equal Content-Length headers", `${PUT_K}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`],
  ];
  for (const [name, bytes] of cases) {
    test(`${name} is a 400 and stores nothing`, async (t) => {
      const { port } = await startInProcess(t);
      await expectRefusal(port, bytes, 400, "BAD_REQUEST");
      await notStored(port, "k");
    });
  }
});

describe("request line and header guards", () => {
  const body = "Fencing-Token: 1\r\nContent-Length: 5\r\n\r\nhello";
  const cases: [string, string][] = [
    ["an HTTP/1.1 request without Host", `PUT /v1/kv/k HTTP/1.1\r\n${body}`],
    ["two Host headers", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nHost: u\r\n${body}`],
    ["a folded header line", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\r\n folded\r\n${body}`],
    ["a space before a header's colon", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note : a\r\n${body}`],
    ["a header line without a colon", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note\r\n${body}`],
    ["a header line with an empty name", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\n: a\r\n${body}`],
    [
      "a control character in a header value",
      `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\x01b\r\n${body}`,
    ],
    ["a NUL in a header value", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\x00b\r\n${body}`],
    ["a bare CR in a header value", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\rb\r\n${body}`],
    ["a bare LF in a header value", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\nb\r\n${body}`],
    ["HTTP/2.0 in the request line", `PUT /v1/kv/k HTTP/2.0\r\nHost: t\r\n${body}`],
    ["a lower-case protocol name", `PUT /v1/kv/k http/1.1\r\nHost: t\r\n${body}`],
    ["a request line of garbage", `\x16\x03\x01garbage\r\nHost: t\r\n${body}`],
    ["a method that is not a token", `P(T /v1/kv/k HTTP/1.1\r\nHost: t\r\n${body}`],
    ["a control character in the target", `PUT /v1/kv/k\x01 HTTP/1.1\r\nHost: t\r\n${body}`],
  ];
  for (const [name, bytes] of cases) {
    test(`${name} is a 400 and stores nothing`, async (t) => {
      const { port } = await startInProcess(t);
      await expectRefusal(port, bytes, 400, "BAD_REQUEST");
      await notStored(port, "k");
    });
  }

  // The layer promises to refuse control characters in header values (docs/errors.md) and Content-Length
  // values that are not digits; trimming must not make either acceptable.
  const edgeCases: [string, string][] = [
    [
      "a vertical tab at the end of a header value",
      `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\x0b\r\n${body}`,
    ],
    ["a form feed before a header value", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: \x0ca\r\n${body}`],
    [
      "a vertical tab after Transfer-Encoding: chunked",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\x0b\r\n\r\n" +
        "5\r\nhello\r\n0\r\n\r\n",
    ],
    ["a bare CR at the end of a header value", `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nX-Note: a\r\r\n${body}`],
    [
      "a no-break space (0xa0) after a Content-Length",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nContent-Length: 5\xa0\r\n\r\nhello",
    ],
  ];
  for (const [name, bytes] of edgeCases) {
    test(`${name} is a 400 and stores nothing`, async (t) => {
      const { port } = await startInProcess(t);
      await expectRefusal(port, bytes, 400, "BAD_REQUEST");
      await notStored(port, "k");
    });
  }

  test("HTTP/1.0 needs no Host; a horizontal tab in a value is allowed", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(
      put("ten", 1, "hello", "X-Note: a\tb\r\n").replace("HTTP/1.1\r\nHost: t\r\n", "HTTP/1.0\r\n"),
    );
    assert.equal((await w.reply()).status, 200);
    await stored(port, "ten", "hello");
  });
});

describe("header size limits", () => {
  test("headers over 16 KiB are a 431 HEADERS_TOO_LARGE; just under is served", async (t) => {
    const { port } = await startInProcess(t);
    const over = put("k", 1, "hello", `X-Big: ${"a".repeat(17 * 1024)}\r\n`);
    await expectRefusal(port, over, 431, "HEADERS_TOO_LARGE");
    await notStored(port, "k");
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(put("k", 1, "hello", `X-Big: ${"a".repeat(15 * 1024)}\r\n`));
    assert.equal((await w.reply()).status, 200);
    await stored(port, "k", "hello");
  });

  test("101 header lines are a 431; 100 are served", async (t) => {
    const { port } = await startInProcess(t);
    // Host, Fencing-Token and Content-Length are 3 of the lines.
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join("");
    await expectRefusal(port, put("k", 1, "hello", lines(98)), 431, "HEADERS_TOO_LARGE");
    await notStored(port, "k");
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(put("k", 1, "hello", lines(97)));
    assert.equal((await w.reply()).status, 200);
    await stored(port, "k", "hello");
  });
});

describe("pipelining and keep-alive", () => {
  test("three requests in one write get three replies in order on one connection", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(put("p", 1, "1") + put("p", 2, "2") + get("/v1/kv/p"));
    const [a, b, c] = await w.replies(3);
    assert.equal(a?.status, 200);
    assert.equal(a?.json?.maxToken, "1");
    assert.equal(b?.status, 200);
    assert.equal(b?.json?.maxToken, "2");
    assert.ok(
      (b?.json?.seq as number) > (a?.json?.seq as number),
      "the second write committed after the first",
    );
    assert.equal(c?.status, 200);
    assert.equal(c?.headers["content-type"], "application/octet-stream");
    assert.equal(c?.text, "2");
    for (const r of [a, b, c]) assert.equal(r?.headers.connection, "keep-alive");
    // Keep-alive: the connection is still open and takes another request.
    assert.equal(await w.quietFor(100), true, "the server neither closed nor sent more");
    await w.write(get("/healthz"));
    assert.deepEqual((await w.reply()).json, { status: "ok" });
  });

  test("a refusal in the middle of a pipeline answers what came before it and nothing after", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    const bad = "PUT /v1/kv/q HTTP/2.0\r\nHost: t\r\n\r\n";
    await w.write(`${put("q", 1, "1")}${bad}${put("q", 3, "3")}`);
    const first = await w.reply();
    assert.equal(first.status, 200);
    assertRefusal(await w.reply(), 400, "BAD_REQUEST");
    await w.closedWithin(2500);
    assert.equal(w.unread, "");
    await stored(port, "q", "1");
  });
});

describe("Connection: close and HTTP/1.0", () => {
  test("Connection: close is echoed and the server closes, leaving pipelined requests unanswered", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(get("/healthz", "Connection: close\r\n") + put("after", 1, "x"));
    const r = await w.reply();
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, "close");
    assert.equal(r.headers["keep-alive"], undefined);
    await w.closedWithin(2500);
    assert.equal(w.unread, "", "nothing after the reply");
    await notStored(port, "after");
  });

  test("an HTTP/1.0 request without keep-alive is closed after its reply", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write("GET /healthz HTTP/1.0\r\n\r\n");
    const r = await w.reply();
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, "close");
    await w.closedWithin(2500);
    assert.equal(w.unread, "");
  });

  test("an HTTP/1.0 request with Connection: keep-alive stays open", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const r = await w.reply();
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, "keep-alive");
    assert.equal(await w.quietFor(100), true, "the server neither closed nor sent more");
    await w.write(
      "PUT /v1/kv/ka HTTP/1.0\r\nConnection: keep-alive\r\nFencing-Token: 1\r\nContent-Length: 2\r\n\r\nok",
    );
    assert.equal((await w.reply()).status, 200);
    await stored(port, "ka", "ok");
  });
});

describe("HEAD", () => {
  test("HEAD /healthz is a 405 with Content-Length and no body; the next pipelined request parses", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(`HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n${get("/healthz")}`);
    const head = await w.reply({ headOnly: true });
    assert.equal(head.status, 405);
    assert.equal(head.headers["content-type"], "application/problem+json");
    assert.equal(head.headers.allow, "GET");
    assert.ok(Number(head.headers["content-length"]) > 0, "the length of the body a GET would get");
    // Framing: right after the HEAD reply's blank line comes the next reply, not a body.
    const next = await w.reply();
    assert.equal(next.status, 200);
    assert.deepEqual(next.json, { status: "ok" });
    assert.equal(w.unread, "");
  });
});

describe("timeouts", () => {
  test("an idle keep-alive connection is closed silently after keepAliveTimeoutMs", async (t) => {
    const { port } = await startInProcess(t, { keepAliveTimeoutMs: 300 });
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(get("/healthz"));
    assert.equal((await w.reply()).status, 200);
    const started = Date.now();
    await w.closedWithin(3000);
    assert.ok(Date.now() - started >= 200, "not closed before the keep-alive timeout");
    assert.equal(w.unread, "", "closed without a reply");
    await stillServing(port);
  });

  test("a connection that sends nothing is closed silently after headersTimeoutMs", async (t) => {
    const { port } = await startInProcess(t, { headersTimeoutMs: 300 });
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.closedWithin(3000);
    assert.equal(w.unread, "", "closed without a reply");
    await stillServing(port);
  });

  test("headers that stall are a 408 REQUEST_TIMEOUT after headersTimeoutMs", async (t) => {
    const { port } = await startInProcess(t, { headersTimeoutMs: 300 });
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write("PUT /v1/kv/slow HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\n");
    assertRefusal(await w.reply(), 408, "REQUEST_TIMEOUT");
    await w.closedWithin(2500);
    await notStored(port, "slow");
    await stillServing(port);
  });

  test("a body that stalls is a 408 after requestTimeoutMs and stores nothing", async (t) => {
    const { port } = await startInProcess(t, { requestTimeoutMs: 400 });
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write("PUT /v1/kv/slow HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nContent-Length: 10\r\n\r\nabc");
    assertRefusal(await w.reply(), 408, "REQUEST_TIMEOUT");
    await w.closedWithin(2500);
    await notStored(port, "slow");
    await stillServing(port);
  });
});

describe("request line details", () => {
  test("empty lines before a request line are ignored", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(`\r\n\r\n${put("blank", 1, "v")}\r\n${get("/v1/kv/blank")}`);
    const [a, b] = await w.replies(2);
    assert.equal(a?.status, 200);
    assert.equal(b?.text, "v");
  });

  test("an empty line split across two reads before a request line is ignored too", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write("\r");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await w.write(`\n${get("/healthz")}`);
    const r = await w.reply();
    assert.equal(r.status, 200, r.text);
  });

  test("raw bytes above 0x7f in the target are a 400 (keys go percent-encoded)", async (t) => {
    const { port } = await startInProcess(t);
    const raw = Buffer.from("ключ☃", "utf8").toString("latin1");
    await expectRefusal(port, put(raw, 1, "v"), 400, "BAD_REQUEST");
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    const key = encodeURIComponent("ключ☃");
    await w.write(put(key, 1, "v") + get(`/v1/kv/${key}`));
    const [a, b] = await w.replies(2);
    assert.equal(a?.status, 200, a?.text);
    assert.equal(a?.json?.key, "ключ☃");
    assert.equal(b?.text, "v");
  });

  test("invalid UTF-8 in the key path is a 400 from the route; the connection stays open", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(put("bad%FF", 1, "v"));
    const r = await w.reply();
    assert.equal(r.status, 400);
    assert.equal(r.json?.code, "BAD_REQUEST");
    assert.equal(r.headers.connection, "keep-alive");
    await w.write(get("/healthz"));
    assert.equal((await w.reply()).status, 200);
  });
});

describe("clients that go away", () => {
  test("a client that disconnects mid-request does not take the server down", async (t) => {
    const { port } = await startInProcess(t);
    for (let i = 0; i < 10; i++) {
      const w = await Wire.open(port);
      // A whole request, then gone before the reply; or gone halfway through the body.
      const bytes = i % 2 === 0 ? put(`gone${i}`, 1, "v") : put(`gone${i}`, 1, "value").slice(0, -2);
      w.socket.write(Buffer.from(bytes, "latin1"));
      w.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    await stillServing(port);
    // The half-sent bodies were never complete requests.
    for (let i = 1; i < 10; i += 2) await notStored(port, `gone${i}`);
    const r = await http(port, "PUT", "/v1/kv/after", {
      headers: { "Fencing-Token": 1 },
      body: "ok",
      timeoutMs: 2000,
    });
    assert.equal(r.status, 200);
    await stored(port, "after", "ok");
  });

  test("a client that half-closes after a request still gets its reply", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    w.socket.end(Buffer.from(put("half", 1, "v"), "latin1"));
    const replies = await w.repliesUntilClose(2500);
    assert.deepEqual(
      replies.map((r) => r.status),
      [200],
    );
    await stored(port, "half", "v");
  });

  test("a client that pipelines requests and half-closes gets a reply to each", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    // Like `printf ... | nc -N`: every request is complete before the FIN, so each must be answered
    // (and none may be carried out without its reply reaching the client).
    w.socket.end(Buffer.from(put("h1", 1, "1") + put("h2", 1, "2") + put("h3", 1, "3"), "latin1"));
    const replies = await w.repliesUntilClose(2500);
    assert.deepEqual(
      replies.map((r) => r.json?.key),
      ["h1", "h2", "h3"],
      "one reply per pipelined request before the close",
    );
    await stored(port, "h3", "3");
  });
});

describe("findings of the adversarial run against the hand-written parser (issue 12)", () => {
  const CHUNKED_K =
    "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: chunked\r\n\r\n";

  test("a trailer section ended by a bare LF is a 400; the request smuggled after it never runs", async (t) => {
    const { port } = await startInProcess(t);
    // The hand-written parser answered 405 to the POST and swallowed the PUT; a proxy in front that
    // ends the body elsewhere would have run the PUT as a request of its own.
    await expectRefusal(
      port,
      `POST /v1/kv/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n${put("victim", 1, "x")}`,
      400,
      "BAD_REQUEST",
    );
    await notStored(port, "victim");
  });

  const cases: [string, string][] = [
    ["a trailer field with a control character", `${CHUNKED_K}5\r\nhello\r\n0\r\nX-T: a\x01\r\n\r\n`],
    ["a trailer line without a colon", `${CHUNKED_K}5\r\nhello\r\n0\r\nX-T\r\n\r\n`],
    ["a NUL in a chunk extension", `${CHUNKED_K}5;a\x00b\r\nhello\r\n0\r\n\r\n`],
    ["a control character in a chunk extension value", `${CHUNKED_K}5;a=\x01\r\nhello\r\n0\r\n\r\n`],
    ["a DEL in a chunk extension value", `${CHUNKED_K}5;a=\x7f\r\nhello\r\n0\r\n\r\n`],
    ["the method FOO", "FOO /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nContent-Length: 1\r\n\r\nx"],
    [
      "a lower-case method",
      "put /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nContent-Length: 1\r\n\r\nx",
    ],
    ["a target without a leading /", put("k", 1, "x").replace("PUT /v1/", "PUT v1/")],
    ["an absolute-form target", put("k", 1, "x").replace("PUT /v1/", "PUT http://t/v1/")],
    ["the target *", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"],
    ["an HTTP/0.9 request line", "GET /v1/kv/k\r\n\r\n"],
    ["a CONNECT request", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"],
    ["Transfer-Encoding: identity", `${PUT_TE("identity")}5\r\nhello\r\n0\r\n\r\n`],
  ];
  for (const [name, bytes] of cases) {
    test(`${name} is a 400 and stores nothing`, async (t) => {
      const { port } = await startInProcess(t);
      await expectRefusal(port, bytes, 400, "BAD_REQUEST");
      await notStored(port, "k");
    });
  }

  test("chunk extensions over node:http's limit are its 413, as problem+json; a short one is fine", async (t) => {
    const { port } = await startInProcess(t);
    await expectRefusal(
      port,
      `${CHUNKED_K}5;a=${"x".repeat(17 * 1024)}\r\nhello\r\n0\r\n\r\n`,
      413,
      "PAYLOAD_TOO_LARGE",
    );
    await notStored(port, "k");
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(`${CHUNKED_K}5;a=${"x".repeat(1000)}\r\nhello\r\n0\r\n\r\n`);
    assert.equal((await w.reply()).status, 200);
    await stored(port, "k", "hello");
  });

  test("a chunked body with a clean trailer is still stored, and the next request is read", async (t) => {
    const { port } = await startInProcess(t);
    const w = await Wire.open(port);
    t.after(() => w.destroy());
    await w.write(`${CHUNKED_K}5\r\nhello\r\n0\r\nX-T: fine\r\n\r\n${get("/v1/kv/k")}`);
    const [a, b] = await w.replies(2);
    assert.equal(a?.status, 200, a?.text);
    assert.equal(b?.text, "hello");
  });
});

/** A fenced PUT of "k" with `Transfer-Encoding: te`, up to its body. */
function PUT_TE(te: string): string {
  return `PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nFencing-Token: 1\r\nTransfer-Encoding: ${te}\r\n\r\n`;
}
