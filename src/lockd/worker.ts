/**
 * The entry point of the worker thread that `startLockdWorker` runs lockd in: starts the server with the
 * options it was given, reports where it listens, and closes it when asked.
 */
import { parentPort, workerData } from "node:worker_threads";
import { FencelockError } from "../shared/errors.js";
import { type LockdOptions, startLockdServer } from "./server.js";

/** Messages from the worker to its parent. */
export type WorkerEvent =
  | { event: "listening"; host: string; port: number; dataPath: string; metricsEndpoint: string | undefined }
  | { event: "failed"; message: string; code: string }
  | { event: "closed" };

const port = parentPort;
if (port) {
  const post = (m: WorkerEvent) => port.postMessage(m);
  const options = workerData as LockdOptions;
  startLockdServer({ ...options, collectWhenIdle: options.collectWhenIdle ?? true }).then(
    (server) => {
      post({
        event: "listening",
        host: server.host,
        port: server.port,
        dataPath: server.dataPath,
        metricsEndpoint: server.metricsEndpoint,
      });
      port.once("message", () => {
        void server.close().then(() => {
          post({ event: "closed" });
          port.close();
        });
      });
    },
    (err: unknown) => {
      const code = err instanceof FencelockError ? err.code : "LOCKD_START";
      post({ event: "failed", message: err instanceof Error ? err.message : String(err), code });
      port.close();
    },
  );
}
