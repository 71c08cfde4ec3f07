/**
 * The baseline of the storage benchmark: a bare `node:http` server that answers the seed protocol's
 * JSON with no fencing and no storage, so the benchmark can show what fencing and durability cost.
 * Prints the same ready line as fencelock's servers.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let body: string;
    try {
      const r = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { val?: unknown; version?: unknown };
      body = JSON.stringify({ val: r.val ?? "", version: r.version ?? 0, err: "" });
      res.statusCode = 200;
    } catch {
      body = JSON.stringify({ val: "", version: 0, err: "malformed JSON" });
      res.statusCode = 400;
    }
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Content-Length", Buffer.byteLength(body));
    res.end(body);
  });
});
server.keepAliveTimeout = 5000;
server.listen(0, "127.0.0.1", () => {
  const { address, port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ event: "listening", host: address, port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
