import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { PartitionProxy } from "../../src/torture/proxy.js";

/** An echo server on loopback, the proxy's target. */
async function echoServer(): Promise<{ server: Server; endpoint: string }> {
  const server = createServer((s) => s.pipe(s));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { server, endpoint: `127.0.0.1:${port}` };
}

async function open(endpoint: string): Promise<Socket> {
  const [host, port] = endpoint.split(":");
  const s = tcpConnect({ host, port: Number(port) });
  // The reset test resets every open connection, those of earlier tests included.
  s.on("error", () => {});
  await once(s, "connect");
  return s;
}

/** Resolves when `socket` is closed (`once` would reject on the reset's error event). */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/** Resolves with what `socket` receives within `ms` (bounded wait). */
function receive(socket: Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const onData = (d: Buffer) => {
      got += d.toString();
    };
    socket.on("data", onData);
    setTimeout(() => {
      socket.off("data", onData);
      resolve(got);
    }, ms);
  });
}

describe("partition proxy", () => {
  let echo: { server: Server; endpoint: string };
  let proxy: PartitionProxy;
  const sockets: Socket[] = [];

  before(async () => {
    echo = await echoServer();
    proxy = new PartitionProxy(echo.endpoint);
    await proxy.listen();
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await proxy.close();
    echo.server.close();
  });

  it("forwards both ways", async () => {
    const s = await open(proxy.endpoint);
    sockets.push(s);
    const got = receive(s, 300);
    s.write("hello");
    assert.equal(await got, "hello");
  });

  it("blackhole stalls an open connection and heal delivers what waited", async () => {
    const s = await open(proxy.endpoint);
    sockets.push(s);
    await new Promise((r) => setTimeout(r, 50));
    proxy.partition("blackhole");
    assert.equal(proxy.partitioned, true);
    const during = receive(s, 300);
    s.write("stalled");
    assert.equal(await during, "");
    const afterHeal = receive(s, 500);
    proxy.heal();
    assert.equal(await afterHeal, "stalled");
  });

  it("blackhole holds a new connection until heal", async () => {
    proxy.partition("blackhole");
    const s = await open(proxy.endpoint);
    sockets.push(s);
    const during = receive(s, 300);
    s.write("later");
    assert.equal(await during, "");
    const afterHeal = receive(s, 500);
    proxy.heal();
    assert.equal(await afterHeal, "later");
  });

  it("reset drops open connections and refuses new ones until heal", async () => {
    const s = await open(proxy.endpoint);
    sockets.push(s);
    await new Promise((r) => setTimeout(r, 50));
    const wasClosed = closed(s);
    proxy.partition("reset");
    await wasClosed;
    const refused = tcpConnect({ host: "127.0.0.1", port: Number(proxy.endpoint.split(":")[1]) });
    refused.on("error", () => {});
    const data = receive(refused, 300);
    refused.write("x");
    await closed(refused);
    assert.equal(await data, "");
    proxy.heal();
    const t = await open(proxy.endpoint);
    sockets.push(t);
    const got = receive(t, 300);
    t.write("back");
    assert.equal(await got, "back");
  });
});
