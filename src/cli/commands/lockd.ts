/**
 * `fencelock lockd`: runs a lockd node until SIGTERM or SIGINT, then closes it gracefully.
 */
// Not the lockd entry point: this module alone keeps gRPC and SQLite out of the main thread, which only
// watches for signals while the server runs in its worker.
import { startLockdWorker } from "../../lockd/worker-host.js";
import { defaultDataDir, parseFlags, parseListen } from "../flags.js";

/** One line for `fencelock --help`. */
export const summary = "run lockd, the embedded single-node lock service (etcd v3 API subset, SQLite)";

const HELP = `usage: fencelock lockd backup FILE [--endpoint HOST:PORT]   (a consistent copy of a running lockd)
       fencelock lockd [--listen HOST:PORT] [--data DIR | --memory] [--sync full|normal] [--retention N]
                     [--max-txn-ops N] [--metrics-listen HOST:PORT]

  --listen HOST:PORT   address to serve on (default 127.0.0.1:2379; port 0 picks a free one)
  --data DIR           database directory (default $XDG_STATE_HOME/fencelock/lockd,
                       else ~/.local/state/fencelock/lockd)
  --memory             keep everything in memory; nothing survives the process
  --sync full|normal   full (default): fsync every commit, survives power loss; the default differs
                       from the storage's (normal) because a lock service that lost revisions to a
                       power cut could hand out the same fencing token twice;
                       normal: a reply means the write is in the OS, survives kill -9 but not
                       a power loss or OS crash (much faster on slow disks)
  --retention N        revisions of history kept for watches and past reads (default 10000)
  --max-txn-ops N      operations a Txn may hold, nested ones counted as etcd does (default 128)
  --metrics-listen HOST:PORT
                       serve Prometheus metrics at http://HOST:PORT/metrics (default: off)

Prints {"event":"listening","host":...,"port":...} on standard output once it serves.

exit codes: 0 stopped by SIGTERM/SIGINT (or the backup written), 1 cannot start or stopped unexpectedly,
2 bad flags`;

/** Runs the subcommand; resolves with the exit code once the node has stopped (or the backup is written). */
export async function run(argv: string[]): Promise<number> {
  // Loaded only for a backup: the server's own thread needs neither gRPC's client nor the .proto files.
  if (argv[0] === "backup") return (await import("./lockd-backup.js")).runBackup(argv.slice(1));
  let values: {
    listen?: string;
    data?: string;
    memory?: boolean;
    sync?: string;
    retention?: string;
    "max-txn-ops"?: string;
    "metrics-listen"?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseFlags({
      args: argv,
      options: {
        listen: { type: "string" },
        data: { type: "string" },
        memory: { type: "boolean" },
        sync: { type: "string" },
        retention: { type: "string" },
        "max-txn-ops": { type: "string" },
        "metrics-listen": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`fencelock lockd: ${(err as Error).message}\n(fencelock lockd --help for the flags)`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const listen = parseListen(values.listen ?? "127.0.0.1:2379");
  if (!listen) {
    console.error(`fencelock lockd: --listen must be HOST:PORT, got "${values.listen}"`);
    return 2;
  }
  if (values.memory && values.data !== undefined) {
    console.error("fencelock lockd: --data and --memory exclude each other");
    return 2;
  }
  if (values.memory && values.sync !== undefined) {
    console.error(
      "fencelock lockd: --sync says how commits reach the disk; --memory keeps nothing on disk: give one",
    );
    return 2;
  }
  if (values.sync !== undefined && values.sync !== "full" && values.sync !== "normal") {
    console.error(`fencelock lockd: --sync must be full or normal, got "${values.sync}"`);
    return 2;
  }
  if (values.retention !== undefined && !/^[1-9]\d{0,17}$/.test(values.retention)) {
    console.error(`fencelock lockd: --retention must be a positive integer, got "${values.retention}"`);
    return 2;
  }
  const maxTxnOps = values["max-txn-ops"];
  if (maxTxnOps !== undefined && !(/^[1-9]\d{0,5}$/.test(maxTxnOps) && Number(maxTxnOps) <= 100_000)) {
    console.error(`fencelock lockd: --max-txn-ops must be an integer from 1 to 100000, got "${maxTxnOps}"`);
    return 2;
  }
  const metricsListen = values["metrics-listen"];
  const metrics = metricsListen === undefined ? undefined : parseListen(metricsListen);
  if (metricsListen !== undefined && !metrics) {
    console.error(`fencelock lockd: --metrics-listen must be HOST:PORT, got "${metricsListen}"`);
    return 2;
  }
  const server = await startLockdWorker({
    host: listen.host,
    port: listen.port,
    memory: values.memory,
    sync: values.sync as "full" | "normal" | undefined,
    dataDir: values.memory ? undefined : (values.data ?? defaultDataDir("lockd")),
    retentionRevisions: values.retention === undefined ? undefined : BigInt(values.retention),
    maxTxnOps: maxTxnOps === undefined ? undefined : Number(maxTxnOps),
    metrics,
  });
  console.log(
    JSON.stringify({
      event: "listening",
      host: server.host,
      port: server.port,
      data: server.dataPath,
      ...(server.metricsEndpoint ? { metrics: server.metricsEndpoint } : {}),
    }),
  );
  let stop = () => {};
  const signalled = new Promise<void>((resolve) => {
    stop = () => resolve();
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  const crash = await Promise.race([signalled.then(() => undefined), server.crashed]);
  process.off("SIGTERM", stop);
  process.off("SIGINT", stop);
  if (crash !== undefined) {
    console.error(`fencelock lockd: the server stopped unexpectedly (${crash})`);
    return 1;
  }
  await server.close();
  return 0;
}
