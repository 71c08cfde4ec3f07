/**
 * Helpers of the storage tests: an in-process server on port 0 (closed after the test), and HTTP
 * requests that can carry anything (raw bytes, any method, any header), with timeouts of their own.
 */
import { request } from "node:http";
import { connect } from "node:net";
import type { TestContext } from "node:test";
import {
  createStorageServer,
  type StorageServer,
  type StorageServerOptions,
} from "../../src/storage/index.js";

/** A reply, with the body as text and, if it parses, as JSON. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown> | undefined;
}

/** Starts an in-process server (in-memory unless `dataDir` is given) on port 0; closed after the test. */
export async function startInProcess(
  t: TestContext | { after(fn: () => Promise<void>): void },
  options: StorageServerOptions = {},
): Promise<{ server: StorageServer; url: string; port: number; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const server = createStorageServer({
    memory: options.dataDir === undefined,
    log: (e) => logs.push(e),
    ...options,
  });
  t.after(() => server.close(1000));
  const { port } = await server.listen(0, "127.0.0.1");
  return { server, url: `http://127.0.0.1:${port}`, port, logs };
}

/** One HTTP request over a fresh connection; rejects after `timeoutMs` (default 10 s). */
export function http(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string | number>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString("utf8");
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${path} timed out`)),
      opts.timeoutMs ?? 10_000,
    );
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(opts.body);
  });
}

/** A seed-protocol request: `POST /` with a JSON body given as text (so it can be anything). */
export function seed(
  port: number,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return http(port, "POST", "/", { headers: { "Content-Type": "application/json", ...headers }, body });
}

/**
 * Sends raw bytes on a fresh TCP connection and resolves with everything the server sent back until it
 * closed the connection (or `timeoutMs` passed, default 10 s).
 */
export function rawExchange(port: number, bytes: Buffer | string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("raw exchange timed out"));
    }, timeoutMs);
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {
      // A reset after the reply: what was received is the answer.
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });
}
