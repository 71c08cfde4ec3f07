/**
 * The load generator of the storage benchmark: fenced seed-protocol writes over a fixed number of
 * keep-alive connections for a fixed time, each connection on its own key with a token that grows by
 * one per write (every write is a legitimate, accepted fenced write).
 */
import { Agent, request } from "node:http";
import { connect } from "node:net";

/** Figures of one run. */
export interface LoadResult {
  writes: number;
  errors: number;
  seconds: number;
  writesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** What to run. */
export interface LoadOptions {
  port: number;
  connections: number;
  durationMs: number;
  /** Prefix of the keys, so runs against the same server do not share fences. */
  keyPrefix: string;
  /** Hard cap on the number of writes, so the run is bounded in count as well as time. */
  maxWrites?: number;
}

/** Runs the load and resolves with its figures. Latencies are measured per request, send to reply. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const maxWrites = options.maxWrites ?? 2_000_000;
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies = new Float64Array(maxWrites);
  let writes = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const one = (key: string, token: number): Promise<boolean> =>
    new Promise((resolve) => {
      const body = `{"op":"write","key":"${key}","val":"value ${token}","version":${token}}`;
      const req = request(
        {
          host: "127.0.0.1",
          port: options.port,
          method: "POST",
          path: "/",
          agent,
          headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode === 200));
          res.on("error", () => resolve(false));
        },
      );
      req.on("error", () => resolve(false));
      req.end(body);
    });

  const worker = async (i: number) => {
    const key = `${options.keyPrefix}-${i}`;
    let token = 1;
    while (performance.now() < deadline && writes < maxWrites) {
      const t0 = performance.now();
      const ok = await one(key, token++);
      const t1 = performance.now();
      if (writes < maxWrites) latencies[writes] = t1 - t0;
      writes++;
      if (!ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: options.connections }, (_, i) => worker(i)));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const recorded = latencies.subarray(0, Math.min(writes, maxWrites)).sort();
  const pct = (p: number) => recorded[Math.min(recorded.length - 1, Math.floor(recorded.length * p))] ?? 0;
  return { writes, errors, seconds, writesPerSecond: writes / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

/**
 * The same load from a minimal client: each connection is a plain TCP socket that writes a prebuilt
 * HTTP/1.1 request and reads the reply by its Content-Length, one request in flight per connection.
 * It costs far less CPU than `node:http`'s client, so it shows what the server does when the client is
 * not the bottleneck.
 */
export async function runRawLoad(options: LoadOptions): Promise<LoadResult> {
  const maxWrites = options.maxWrites ?? 2_000_000;
  const latencies = new Float64Array(maxWrites);
  let writes = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const worker = (i: number) =>
    new Promise<void>((resolve) => {
      const key = `${options.keyPrefix}-${i}`;
      const socket = connect(options.port, "127.0.0.1");
      socket.setNoDelay(true);
      let token = 1;
      let sentAt = 0;
      let pending: Buffer = Buffer.alloc(0);
      const send = () => {
        if (performance.now() >= deadline || writes >= maxWrites) {
          socket.end();
          return;
        }
        const body = `{"op":"write","key":"${key}","val":"value ${token}","version":${token}}`;
        token++;
        sentAt = performance.now();
        socket.write(
          `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      };
      socket.on("connect", send);
      socket.on("data", (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        const end = pending.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = pending.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        if (writes < maxWrites) latencies[writes] = performance.now() - sentAt;
        writes++;
        if (!head.startsWith("HTTP/1.1 200")) errors++;
        send();
      });
      socket.on("error", () => {
        errors++;
        resolve();
      });
      socket.on("close", () => resolve());
    });
  await Promise.all(Array.from({ length: options.connections }, (_, i) => worker(i)));
  const seconds = (performance.now() - started) / 1000;
  const recorded = latencies.subarray(0, Math.min(writes, maxWrites)).sort();
  const pct = (p: number) => recorded[Math.min(recorded.length - 1, Math.floor(recorded.length * p))] ?? 0;
  return { writes, errors, seconds, writesPerSecond: writes / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}
