/**
 * The connection to an etcd cluster: one gRPC channel per endpoint, the endpoint in use, failover to the
 * next endpoint when a member becomes unavailable, a deadline on every unary call, TLS, and etcd
 * user/password auth (the token goes in the `token` metadata, fetched again when etcd says it is invalid).
 */
import * as grpc from "@grpc/grpc-js";
import { etcdServices } from "../proto/load.js";
import type { AuthenticateResponse } from "../proto/types.js";
import { answerDecoders } from "./answer-decoders.js";
import {
  AbortedError,
  CallTimeoutError,
  ClientClosedError,
  EtcdUnavailableError,
  InvalidArgumentError,
} from "./errors.js";
import { connectFailure, fromGrpc, isRetryable, needsReauth } from "./grpc-errors.js";

/** TLS material, PEM-encoded. An empty object means TLS with the system's root certificates. */
export interface TlsOptions {
  /** CA certificate(s) that sign the server certificates. */
  ca?: string | Buffer;
  /** Client certificate, for clusters that require client certificates (with `key`). */
  cert?: string | Buffer;
  /** Client private key. */
  key?: string | Buffer;
}

/** etcd user name and password. */
export interface AuthOptions {
  username: string;
  password: string;
}

/** What `Transport` needs. */
export interface TransportOptions {
  endpoints: string[];
  tls?: TlsOptions;
  auth?: AuthOptions;
  /** Deadline of each unary call in ms. */
  callTimeoutMs: number;
}

/** The services of the etcd v3 subset. */
export type ServiceName = "KV" | "Lease" | "Watch" | "Cluster" | "Maintenance" | "Auth";

/** Per-call options of `Transport.unary`. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Absolute deadline (epoch ms); the call's own deadline is the earlier of this and `callTimeoutMs`. */
  deadline?: number;
  /** Safe to send again after an unavailable member: retried on the next endpoints. */
  idempotent: boolean;
}

/** A bidirectional stream opened on one endpoint. */
export interface OpenStream<Req, Res> {
  call: grpc.ClientDuplexStream<Req, Res>;
  endpoint: string;
  /** Maps a stream error to a typed error and moves off the endpoint if it became unavailable. */
  fail(err: unknown): unknown;
}

const toBuffer = (value: string | Buffer | undefined) =>
  value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value);

/** Accepts `host:port` and also `http://host:port` / `https://host:port`, as etcdctl does. */
function normaliseEndpoint(endpoint: unknown): string {
  if (typeof endpoint !== "string")
    throw new InvalidArgumentError(`endpoint ${JSON.stringify(endpoint)} is not a string`);
  const bare = endpoint.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  if (!/^[^\s/:]+:\d{1,5}$/.test(bare) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(bare)) {
    throw new InvalidArgumentError(`endpoint "${endpoint}" is not host:port`);
  }
  return bare;
}

/** How long to wait before trying the endpoints again after a full round failed, in ms. */
const ROUND_BACKOFF_MS = 100;

/**
 * The methods as called, by "Service.Method": the loader's definitions, with its answer decoder swapped
 * for the client's own where there is one (`answer-decoders.ts`: the same objects for less work).
 */
const METHODS = new Map<string, grpc.MethodDefinition<unknown, unknown>>();
let decoders: ReadonlyMap<string, (bytes: Buffer) => object> | undefined;

/** A failed call as grpc-js's client reports it: "CODE NAME: details", with the status's fields. */
function callError(status: grpc.StatusObject): Error & grpc.StatusObject {
  const message = `${status.code} ${grpc.status[status.code]}: ${status.details}`;
  return Object.assign(new Error(message), status);
}

/** The client side of the etcd v3 gRPC API over a list of endpoints. */
export class Transport {
  readonly endpoints: readonly string[];
  private readonly credentials: grpc.ChannelCredentials;
  private readonly channels = new Map<string, grpc.Client>();
  private index = 0;
  private token: string | undefined;
  private authenticating: Promise<string> | undefined;
  private closed = false;
  /** Whether any call has ever been answered: until then a refused connection means a wrong address. */
  private reached = false;
  private readonly failoverListeners = new Set<(from: string) => void>();

  constructor(private readonly options: TransportOptions) {
    if (!Array.isArray(options.endpoints)) {
      throw new InvalidArgumentError(
        `endpoints must be an array of "host:port" strings, like ["127.0.0.1:2379"]; got ${JSON.stringify(options.endpoints)}`,
      );
    }
    if (options.endpoints.length === 0) throw new InvalidArgumentError("no endpoints");
    if (!(Number.isFinite(options.callTimeoutMs) && options.callTimeoutMs > 0)) {
      throw new InvalidArgumentError(`callTimeoutMs must be a positive number, got ${options.callTimeoutMs}`);
    }
    if (options.auth && !options.auth.username) throw new InvalidArgumentError("auth.username is empty");
    this.endpoints = options.endpoints.map(normaliseEndpoint);
    const tls = options.tls;
    this.credentials = tls
      ? grpc.credentials.createSsl(toBuffer(tls.ca), toBuffer(tls.key), toBuffer(tls.cert))
      : grpc.credentials.createInsecure();
  }

  /** Deadline of each unary call in ms. */
  get callTimeoutMs(): number {
    return this.options.callTimeoutMs;
  }

  /** The endpoint calls go to now. */
  get endpoint(): string {
    return this.endpoints[this.index] as string;
  }

  /**
   * Moves to the next endpoint, unless another call already moved off `endpoint`, and tells the
   * `onFailover` listeners, so streams still open on the old member move too.
   */
  failover(endpoint: string): void {
    if (this.endpoint !== endpoint) return;
    this.index = (this.index + 1) % this.endpoints.length;
    for (const listener of [...this.failoverListeners]) listener(endpoint);
  }

  /** Calls `listener(oldEndpoint)` after each failover; returns the function that removes it. */
  onFailover(listener: (from: string) => void): () => void {
    this.failoverListeners.add(listener);
    return () => this.failoverListeners.delete(listener);
  }

  private channel(endpoint: string): grpc.Client {
    if (this.closed) throw new ClientClosedError();
    let channel = this.channels.get(endpoint);
    if (!channel) {
      channel = new grpc.Client(endpoint, this.credentials, {
        // Finds a member that vanished without closing its connections (frozen, cut off). etcd
        // refuses pings more often than every 5 s.
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 5_000,
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 2_000,
      });
      this.channels.set(endpoint, channel);
    }
    return channel;
  }

  private method(service: ServiceName, name: string): grpc.MethodDefinition<unknown, unknown> {
    const key = `${service}.${name}`;
    let method = METHODS.get(key);
    if (!method) {
      const definition = etcdServices()[service].service[name];
      if (!definition) throw new InvalidArgumentError(`no method ${key}`);
      decoders ??= answerDecoders();
      const decode = decoders.get(key);
      method = decode ? { ...definition, responseDeserialize: decode } : definition;
      METHODS.set(key, method);
    }
    return method;
  }

  private async metadata(signal?: AbortSignal, deadline?: number): Promise<grpc.Metadata> {
    const metadata = new grpc.Metadata();
    if (this.options.auth) metadata.set("token", await this.authToken(signal, deadline));
    return metadata;
  }

  private authToken(signal?: AbortSignal, deadline?: number): Promise<string> {
    if (this.token !== undefined) return Promise.resolve(this.token);
    if (!this.authenticating) {
      const auth = this.options.auth as AuthOptions;
      this.authenticating = this.call<AuthenticateResponse>(
        "Auth",
        "Authenticate",
        { name: auth.username, password: auth.password },
        { idempotent: true, signal, deadline },
        false,
      ).then(
        (res) => {
          this.authenticating = undefined;
          this.token = res.token;
          return res.token;
        },
        (err: unknown) => {
          this.authenticating = undefined;
          throw err;
        },
      );
    }
    return this.authenticating;
  }

  /**
   * One unary call; each attempt has a deadline of `callTimeoutMs` (or less, if the caller's deadline
   * is nearer). Idempotent calls move to the next endpoint and try again when a member is unavailable or an
   * attempt timed out, for at most twice `callTimeoutMs`; an invalid auth token is fetched again once.
   * Rejects with a typed error (see `grpc-errors.ts`); with `AbortedError` if `signal` aborts; with
   * `CallTimeoutError` at the deadline; with `ClientClosedError` after `close()`.
   */
  unary<Res>(service: ServiceName, method: string, request: object, options: CallOptions): Promise<Res> {
    return this.call<Res>(service, method, request, options, true);
  }

  private async call<Res>(
    service: ServiceName,
    name: string,
    request: object,
    options: CallOptions,
    withAuth: boolean,
  ): Promise<Res> {
    const { signal } = options;
    const what = `${service}.${name}`;
    // Retries of an idempotent call end at twice the call timeout, or at the caller's deadline.
    const end = Math.min(options.deadline ?? Number.POSITIVE_INFINITY, Date.now() + 2 * this.callTimeoutMs);
    const method = this.method(service, name);
    // Once for every attempt. It throws only on a request that is no object, which the types rule out.
    const bytes = method.requestSerialize(request);
    let reauthenticated = false;
    const unreachable = new Map<string, "refused" | "not-grpc">();
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw new AbortedError(what, signal.reason);
      const endpoint = this.endpoint;
      const deadline = Math.min(end, Date.now() + this.callTimeoutMs);
      try {
        const metadata = withAuth ? await this.metadata(signal, deadline) : new grpc.Metadata();
        const res = await this.once<Res>(endpoint, method, bytes, metadata, deadline, signal);
        this.reached = true;
        return res;
      } catch (raw) {
        const err = fromGrpc(raw, what, endpoint);
        if (signal?.aborted) throw new AbortedError(what, signal.reason);
        // A client that never reached any member and finds nothing to talk to at every endpoint has a
        // wrong address or no server running: say so now instead of retrying until the deadline. Once it
        // has been answered, a refusal is a member restarting, worth riding out.
        const failure = this.reached ? undefined : connectFailure(raw);
        if (failure) {
          unreachable.set(endpoint, failure);
          if (unreachable.size === this.endpoints.length) throw this.unreachableError(unreachable, raw);
        }
        if (needsReauth(err) && this.options.auth && withAuth && !reauthenticated) {
          reauthenticated = true;
          this.token = undefined;
          continue;
        }
        // A member that is gone, has no leader, or swallowed the request (a proposal forwarded to a
        // leader that just died is lost until etcd's own timeout): try the next one.
        if (!isRetryable(err) && !(err instanceof CallTimeoutError)) throw err;
        this.failover(endpoint);
        if (!options.idempotent || Date.now() >= end) throw err;
        if (attempt % this.endpoints.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(ROUND_BACKOFF_MS, end - Date.now())));
        }
      }
    }
  }

  private unreachableError(why: Map<string, "refused" | "not-grpc">, cause: unknown): EtcdUnavailableError {
    const each = [...why].map(
      ([endpoint, failure]) =>
        `${endpoint} (${failure === "refused" ? "connection refused" : "not a gRPC server; is it an HTTP port?"})`,
    );
    return new EtcdUnavailableError(
      `no lock service at ${each.join(", ")}: start one with \`fencelock lockd\` or \`fencelock cluster up\`, or give the right endpoints`,
      this.endpoint,
      { cause, tried: [...why.keys()] },
    );
  }

  /**
   * One attempt, made on the channel's own call: grpc-js's `Client.makeUnaryRequest` wraps it in
   * interceptor layers and an event emitter, and captures a stack trace for every call, which this client
   * (with no interceptors, and its own typed errors) does not use. A failure rejects with what that method
   * would give: an `Error` carrying the status's `code`, `details` and `metadata`.
   */
  private once<Res>(
    endpoint: string,
    method: grpc.MethodDefinition<unknown, unknown>,
    request: Buffer,
    metadata: grpc.Metadata,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    const channel = this.channel(endpoint).getChannel();
    return new Promise<Res>((resolve, reject) => {
      const call = channel.createCall(method.path, deadline, undefined, null, undefined);
      const onAbort = () => call.cancelWithStatus(grpc.status.CANCELLED, "Cancelled on client");
      let answer: { value: unknown } | undefined;
      let unreadable: grpc.StatusObject | undefined;
      call.start(metadata, {
        onReceiveMetadata: () => {},
        onReceiveMessage: (message: Buffer) => {
          try {
            answer = { value: method.responseDeserialize(message) };
          } catch (err) {
            const details = `Response message parsing error: ${err instanceof Error ? err.message : String(err)}`;
            unreadable = { code: grpc.status.INTERNAL, details, metadata: new grpc.Metadata() };
            call.cancelWithStatus(unreadable.code, details);
          }
        },
        onReceiveStatus: (received: grpc.StatusObject) => {
          signal?.removeEventListener("abort", onAbort);
          const status = unreadable ?? received;
          if (status.code === grpc.status.OK && answer) resolve(answer.value as Res);
          else if (status.code === grpc.status.OK)
            reject(callError({ ...status, code: grpc.status.UNIMPLEMENTED, details: "No message received" }));
          else reject(callError(status));
        },
      });
      call.startRead();
      signal?.addEventListener("abort", onAbort, { once: true });
      call.sendMessageWithContext({}, request);
      call.halfClose();
    });
  }

  /**
   * Opens a bidirectional stream on the endpoint in use (streams have no deadline; their owner ends
   * them). Rejects with `ClientClosedError` after `close()`, or with an auth error.
   */
  async stream<Req, Res>(
    service: ServiceName,
    name: string,
    signal?: AbortSignal,
  ): Promise<OpenStream<Req, Res>> {
    const method = this.method(service, name);
    const endpoint = this.endpoint;
    const metadata = await this.metadata(signal, Date.now() + this.callTimeoutMs);
    const call = this.channel(endpoint).makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      metadata,
      {},
    ) as grpc.ClientDuplexStream<Req, Res>;
    return {
      call,
      endpoint,
      fail: (raw) => {
        const err = fromGrpc(raw, `${service}.${name}`, endpoint);
        if (isRetryable(err)) this.failover(endpoint);
        if (needsReauth(err)) this.token = undefined;
        return err;
      },
    };
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes every channel; calls in flight fail. Safe to call twice. */
  close(): void {
    this.closed = true;
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }
}
