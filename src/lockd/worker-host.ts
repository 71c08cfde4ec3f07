/**
 * Runs lockd in a worker thread whose young generation is bounded. V8 sizes the young generation of a
 * main thread for throughput (up to 16 MB semi-spaces) and never gives it back; for a long-lived server
 * holding 100,000 keys that slack was a fifth of its memory. A worker's heap limits can be set in code,
 * where a main thread's need command-line flags.
 */
import { Worker } from "node:worker_threads";
import type { LockdOptions } from "./server.js";
import { LockdStartError } from "./start-error.js";
import type { WorkerEvent } from "./worker.js";

/**
 * Young generation of the lockd worker, in MB. With 8, a burst of 1,000 calls in flight spent a third of
 * the thread's time in scavenges, and lockd used 4 to 12% more CPU per burst than with 16; at rest after
 * 100,000 keys the two hold the same (116 to 119 MB). 24 and 32 held more at rest and were no faster.
 */
const YOUNG_GENERATION_MB = 16;

/** A lockd node running in a worker thread. */
export interface LockdWorker {
  host: string;
  port: number;
  endpoint: string;
  dataPath: string;
  /** `host:port` of the metrics endpoint, if served. */
  metricsEndpoint: string | undefined;
  /** Resolves with the exit code if the worker ends by itself (a crash); never resolves otherwise. */
  crashed: Promise<number>;
  /** Closes the node gracefully and ends the worker. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts lockd in a worker thread and resolves once it listens. Rejects with the start error if it cannot
 * (the worker is ended). `options.log` is not used: the worker logs JSON lines on standard error.
 * `collectWhenIdle` is on unless set to false, as the worker's thread runs nothing else.
 */
export async function startLockdWorker(options: Omit<LockdOptions, "log">): Promise<LockdWorker> {
  const worker = new Worker(new URL("./worker.js", import.meta.url), {
    workerData: options,
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
  });
  let closing = false;
  const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
  const listening = await new Promise<Extract<WorkerEvent, { event: "listening" }>>((resolve, reject) => {
    worker.once("error", (err) =>
      reject(new LockdStartError(`lockd worker failed: ${err.message}`, { cause: err })),
    );
    worker.once("message", (m: WorkerEvent) => {
      if (m.event === "listening") resolve(m);
      else if (m.event === "failed") reject(new LockdStartError(m.message));
    });
    void exited.then((code) =>
      reject(new LockdStartError(`lockd worker exited (${code}) before it listened`)),
    );
  });
  // A later failure of the worker ends it; `crashed` reports the exit, this line says why.
  worker.on("error", (err) =>
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), event: "worker-error", error: err.stack })}\n`,
    ),
  );
  let closed: Promise<void> | undefined;
  return {
    host: listening.host,
    port: listening.port,
    endpoint: `${listening.host.includes(":") ? `[${listening.host}]` : listening.host}:${listening.port}`,
    dataPath: listening.dataPath,
    metricsEndpoint: listening.metricsEndpoint,
    crashed: exited.then((code) => (closing ? new Promise<number>(() => {}) : code)),
    close() {
      closing = true;
      closed ??= (async () => {
        worker.postMessage("close");
        await exited;
      })();
      return closed;
    },
  };
}
