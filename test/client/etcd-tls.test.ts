/**
 * TLS with client certificates against a real etcd serving https only: certificates made with openssl
 * for the test, one member launched directly (the test kit's cluster speaks plain http).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type LockClient } from "../../src/client/index.js";
import { FencelockError } from "../../src/shared/errors.js";
import { type Child, freePort, launch, type TempDir, tempDir } from "../../src/testkit/index.js";

function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=fencelock test CA",
  );
  for (const [name, usage] of [
    ["server", "serverAuth,clientAuth"],
    ["client", "clientAuth"],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    openssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  }
}

describe("lock client over TLS with client certificates", () => {
  let dir: TempDir;
  let etcd: Child | undefined;
  let endpoint: string;
  const clients: LockClient[] = [];
  const pem = (name: string) => readFileSync(join(dir.path, name));

  before(async () => {
    dir = await tempDir("client-tls");
    makeCertificates(dir.path);
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    endpoint = `127.0.0.1:${clientPort}`;
    etcd = await launch({
      name: "etcd-tls",
      command: "etcd",
      args: [
        "--name",
        "m1",
        "--data-dir",
        join(dir.path, "data"),
        "--listen-client-urls",
        `https://${endpoint}`,
        "--advertise-client-urls",
        `https://${endpoint}`,
        "--listen-peer-urls",
        `http://127.0.0.1:${peerPort}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${peerPort}`,
        "--initial-cluster",
        `m1=http://127.0.0.1:${peerPort}`,
        "--cert-file",
        join(dir.path, "server.crt"),
        "--key-file",
        join(dir.path, "server.key"),
        "--trusted-ca-file",
        join(dir.path, "ca.crt"),
        "--client-cert-auth",
        "--logger",
        "zap",
        "--log-level",
        "info",
      ],
      readyLine: (line) => (line.includes("serving client traffic securely") ? true : undefined),
      readyOnStderr: true,
      timeoutMs: 30_000,
    });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await etcd?.stop();
    await dir?.remove();
  });

  const client = (tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }, callTimeoutMs = 1500) => {
    const c = connect({ endpoints: [endpoint], tls, callTimeoutMs });
    clients.push(c);
    return c;
  };

  it("locks with the CA and a client certificate", async () => {
    const c = client({ ca: pem("ca.crt"), cert: pem("client.crt"), key: pem("client.key") });
    const result = await c.withLock("/tls", async ({ token }) => token, { ttl: 5, timeoutMs: 10_000 });
    assert.ok(result > 0n);
  });

  it("is refused without a client certificate, and without TLS", async () => {
    await assert.rejects(client({ ca: pem("ca.crt") }, 500).session({ ttl: 5 }), FencelockError);
    await assert.rejects(client(undefined, 500).session({ ttl: 5 }), FencelockError);
  });
});
