#!/usr/bin/env node
/**
 * The entry point of a torture worker process: `node dist/src/torture/worker-main.js --worker w0.1 …`.
 * Prints one history event per line on standard output (pipes are written synchronously on Linux, so a
 * SIGKILL loses no line already printed). SIGTERM asks it to finish the current cycle and exit. With
 * `--deadline stdin` it prints `{"event":"ready"}` once loaded and waits for `go <deadline>` on standard
 * input, so that a run's clock starts only when every worker can work.
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import type { Mode } from "./checker.js";
import type { ResourceKind } from "./counter.js";
import { formatEvent } from "./history.js";
import { type LockScope, runWorker } from "./worker.js";

const { values } = parseArgs({
  options: {
    worker: { type: "string" },
    endpoints: { type: "string" },
    resource: { type: "string" },
    url: { type: "string" },
    mode: { type: "string" },
    keys: { type: "string" },
    scope: { type: "string" },
    ttl: { type: "string" },
    seed: { type: "string" },
    "max-ops": { type: "string" },
    deadline: { type: "string" },
    "think-ms": { type: "string" },
    "op-timeout-ms": { type: "string" },
  },
});

const stop = new AbortController();
process.once("SIGTERM", () => stop.abort(new Error("SIGTERM")));
// A client library's stray rejection must not end the worker silently: print it and carry on.
process.on("unhandledRejection", (err) => process.stderr.write(`unhandled rejection: ${String(err)}\n`));
// The harness is gone (EPIPE): nobody is listening, so stop.
process.stdout.on("error", () => stop.abort(new Error("stdout closed")));

/** Waits for the `go <epoch ms>` line; exits if none comes within a minute or stdin closes. */
async function awaitGo(): Promise<number> {
  process.stdout.write(`${JSON.stringify({ event: "ready" })}\n`);
  const lines = createInterface({ input: process.stdin });
  const timer = setTimeout(() => process.exit(1), 60_000);
  try {
    for await (const line of lines) {
      const m = /^go (\d+)$/.exec(line.trim());
      if (m) return Number(m[1]);
    }
    process.exit(1);
  } finally {
    clearTimeout(timer);
    lines.close();
  }
}

const deadlineMs =
  values.deadline === "stdin" ? await awaitGo() : Number(values.deadline ?? Date.now() + 60_000);

try {
  await runWorker({
    worker: values.worker ?? "w0.1",
    endpoints: (values.endpoints ?? "").split(","),
    resource: (values.resource ?? "storage") as ResourceKind,
    resourceUrl: values.url ?? "",
    mode: (values.mode ?? "fenced") as Mode,
    keys: Number(values.keys ?? 1),
    scope: (values.scope ?? "per-key") as LockScope,
    ttl: Number(values.ttl ?? 1),
    seed: values.seed ?? "0",
    maxOps: Number(values["max-ops"] ?? 100_000),
    deadlineMs,
    thinkMs: Number(values["think-ms"] ?? 0),
    opTimeoutMs: Number(values["op-timeout-ms"] ?? 5000),
    emit: (e) => {
      if (!process.stdout.destroyed) process.stdout.write(`${formatEvent(e)}\n`);
    },
    signal: stop.signal,
  });
  process.exit(0);
} catch (err) {
  process.stderr.write(`worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
