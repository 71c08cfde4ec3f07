/**
 * A raw etcd v3 gRPC client for lockd's tests: the project's `.proto`, no lock client, answers exactly as
 * they come off the wire (int64 as decimal strings, bytes as Buffer).
 */
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import type { LeaseKeepAliveResponse, WatchCreateRequest, WatchResponse } from "../../src/proto/index.js";
import { etcdServices } from "../../src/proto/index.js";

type Unary = (
  req: object,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

/** A gRPC error as the client sees it. */
export interface RpcError {
  code: number;
  details: string;
}

/** Resolves with the gRPC status of a call that must fail; rejects if it succeeds. */
export async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error("the call succeeded but was expected to fail");
}

/** One open Watch stream with a queue of its responses. */
export class WatchStreamClient {
  private readonly queue: WatchResponse[] = [];
  private waiters: (() => void)[] = [];
  readonly call: grpc.ClientDuplexStream<object, WatchResponse>;
  ended = false;

  constructor(client: grpc.Client) {
    this.call = (client as unknown as { Watch(): grpc.ClientDuplexStream<object, WatchResponse> }).Watch();
    this.call.on("data", (res: WatchResponse) => {
      this.queue.push(res);
      this.wake();
    });
    this.call.on("error", () => {
      this.ended = true;
      this.wake();
    });
    this.call.on("end", () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Sends a create request. */
  create(req: Partial<WatchCreateRequest> & { key: Buffer }): void {
    this.call.write({ create_request: req });
  }

  /** Sends a cancel request. */
  cancel(id: string): void {
    this.call.write({ cancel_request: { watch_id: id } });
  }

  /** Sends a progress request. */
  progress(): void {
    this.call.write({ progress_request: {} });
  }

  /** The next response; rejects after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<WatchResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) throw new Error("watch stream ended");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no watch response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.queue.shift() as WatchResponse;
  }

  /** Responses until `count` events have arrived (events only), within `timeoutMs`. */
  async events(count: number, timeoutMs = 5000): Promise<WatchResponse[]> {
    const out: WatchResponse[] = [];
    let n = 0;
    const deadline = Date.now() + timeoutMs;
    while (n < count) {
      const res = await this.next(Math.max(1, deadline - Date.now()));
      out.push(res);
      n += res.events.length;
    }
    return out;
  }

  /** True if a response arrives within `ms`. */
  async quiet(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Ends the stream. */
  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

/** Clients of every service at one endpoint. */
export class Raw {
  private readonly clients: Record<string, grpc.Client>;
  private readonly streams: grpc.ClientDuplexStream<object, unknown>[] = [];

  constructor(endpoint: string) {
    const s = etcdServices();
    const cred = grpc.credentials.createInsecure();
    this.clients = {
      KV: new s.KV(endpoint, cred),
      Lease: new s.Lease(endpoint, cred),
      Watch: new s.Watch(endpoint, cred),
      Cluster: new s.Cluster(endpoint, cred),
      Maintenance: new s.Maintenance(endpoint, cred),
      Auth: new s.Auth(endpoint, cred),
    };
  }

  /** Calls `service.method(req)` with a 10 s deadline. */
  call<T>(service: string, method: string, req: object): Promise<T> {
    const client = this.clients[service] as grpc.Client;
    const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
    return new Promise<T>((resolve, reject) =>
      fn.call(client, req, { deadline: Date.now() + 10_000 }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      ),
    );
  }

  /** Opens a Watch stream. */
  watch(): WatchStreamClient {
    const w = new WatchStreamClient(this.clients.Watch as grpc.Client);
    this.streams.push(w.call);
    return w;
  }

  /** Sends one keep-alive on a fresh stream and returns the answer. */
  async keepAliveOnce(id: string): Promise<LeaseKeepAliveResponse> {
    const client = this.clients.Lease as unknown as {
      LeaseKeepAlive(): grpc.ClientDuplexStream<object, LeaseKeepAliveResponse>;
    };
    const call = client.LeaseKeepAlive();
    try {
      return await new Promise<LeaseKeepAliveResponse>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no keep-alive answer")), 5000);
        call.once("data", (res: LeaseKeepAliveResponse) => {
          clearTimeout(t);
          resolve(res);
        });
        call.once("error", (err) => {
          clearTimeout(t);
          reject(err);
        });
        call.write({ ID: id });
      });
    } finally {
      call.end();
      call.cancel();
    }
  }

  /** Closes every client and stream. */
  close(): void {
    for (const s of this.streams) s.cancel();
    for (const c of Object.values(this.clients)) c.close();
  }
}

/** One unary call as HTTP/2 carries it: the answer's header fields, its trailers and its body bytes. */
export interface WireAnswer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
  body: Buffer;
}

/**
 * Calls `service.method(req)` over a plain node:http2 session, so the test sees every header field
 * the server sends (a gRPC client keeps some to itself). Rejects after 10 s.
 */
export async function wireCall(
  endpoint: string,
  service: string,
  method: string,
  req: object,
): Promise<WireAnswer> {
  const definition = (etcdServices() as unknown as Record<string, { service: grpc.ServiceDefinition }>)[
    service
  ]?.service[method];
  if (!definition) throw new Error(`no method ${service}.${method}`);
  const message = definition.requestSerialize(req);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  const session = http2.connect(`http://${endpoint}`);
  try {
    return await new Promise<WireAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${method} within 10 s`)), 10_000);
      session.once("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": `/etcdserverpb.${service}/${method}`,
        "content-type": "application/grpc",
        te: "trailers",
      });
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        headers = h;
      });
      stream.on("trailers", (t) => {
        trailers = t;
      });
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("error", reject);
      stream.on("close", () => {
        clearTimeout(timer);
        resolve({ headers, trailers, body: Buffer.concat(chunks) });
      });
      stream.end(frame);
    });
  } finally {
    session.close();
  }
}
