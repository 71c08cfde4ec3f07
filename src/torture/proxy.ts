/**
 * A TCP proxy of ours that sits between one worker and one lock-service endpoint, so a partition can be
 * made on loopback: `partition("blackhole")` stops forwarding in both directions (bytes wait in the kernel
 * buffers, as behind a cable that was pulled; new connections are accepted but not connected), and
 * `partition("reset")` drops every connection and closes new ones at once. `heal()` restores forwarding.
 * Connections are dropped with `destroy()`, not `resetAndDestroy()`: on Node 20 a reset socket could
 * leave a handle that never closes, and the process then spun at exit.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/** How a partition behaves: stall every byte, or drop every connection. */
export type PartitionMode = "blackhole" | "reset";

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

/** A partitionable TCP proxy on 127.0.0.1. */
export class PartitionProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  private mode: PartitionMode | undefined;
  private listenPort = 0;
  /** Connections accepted so far. */
  accepted = 0;

  /** `target` is `host:port` of the real endpoint. */
  constructor(readonly target: string) {}

  /** `127.0.0.1:<port>` of the proxy, once `listen` resolved. */
  get endpoint(): string {
    return `127.0.0.1:${this.listenPort}`;
  }

  /** True while partitioned. */
  get partitioned(): boolean {
    return this.mode !== undefined;
  }

  /** Starts listening on a free loopback port; resolves with it. A second call returns the same port. */
  async listen(): Promise<number> {
    if (this.server) return this.listenPort;
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    this.listenPort = typeof address === "object" && address ? address.port : 0;
    return this.listenPort;
  }

  /** Cuts the link. Calling it again switches the mode. */
  partition(mode: PartitionMode): void {
    this.mode = mode;
    for (const pair of [...this.pairs]) {
      if (mode === "reset") this.drop(pair);
      else {
        pair.client.pause();
        pair.upstream?.pause();
      }
    }
  }

  /** Restores forwarding: stalled connections carry on, waiting ones are connected. Safe to call twice. */
  heal(): void {
    if (this.mode === undefined) return;
    this.mode = undefined;
    for (const pair of [...this.pairs]) {
      if (pair.upstream) {
        pair.client.resume();
        pair.upstream.resume();
      } else this.connectUpstream(pair);
    }
  }

  /** Stops listening and destroys every connection. Safe to call twice. */
  async close(): Promise<void> {
    this.mode = undefined;
    for (const pair of [...this.pairs]) this.drop(pair);
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.mode === "reset") {
      client.destroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined };
    this.pairs.add(pair);
    client.on("error", () => this.drop(pair));
    client.on("close", () => this.drop(pair));
    if (this.mode === undefined) this.connectUpstream(pair);
  }

  private connectUpstream(pair: Pair): void {
    const [host, port] = splitHostPort(this.target);
    const upstream = tcpConnect({ host, port });
    pair.upstream = upstream;
    upstream.on("error", () => this.drop(pair));
    upstream.on("close", () => this.drop(pair));
    upstream.once("connect", () => {
      forward(pair.client, upstream, () => this.mode === "blackhole");
      forward(upstream, pair.client, () => this.mode === "blackhole");
      if (this.mode !== "blackhole") pair.client.resume();
    });
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}

/** Copies `from` to `to`, honouring back-pressure, and never resuming while `stalled()`. */
function forward(from: Socket, to: Socket, stalled: () => boolean): void {
  from.on("data", (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on("drain", () => {
    if (!stalled()) from.resume();
  });
  from.on("end", () => to.end());
}

function splitHostPort(endpoint: string): [string, number] {
  const i = endpoint.lastIndexOf(":");
  return [endpoint.slice(0, i), Number(endpoint.slice(i + 1))];
}
