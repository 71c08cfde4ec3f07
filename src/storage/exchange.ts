/**
 * One HTTP exchange of the storage clients (`/v1` and the seed's `POST /`): bounded by a timeout and the
 * caller's signal, listeners always removed, the reply read whole up to a bound.
 */
import { type Agent, type IncomingHttpHeaders, request } from "node:http";
import { StorageAbortedError, StorageTimeoutError, StorageUnavailableError } from "./errors.js";

/** A whole reply. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Where to send: the server and the connection pool. */
export interface Target {
  host: string;
  port: number;
  agent: Agent;
}

/** What to send; `what` names the call in error messages (`write`, `fence reset`). */
export interface Exchange {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
  what: string;
}

/** The largest reply a client reads: a 1 MiB value with room to spare. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

/**
 * Sends one request and resolves with the whole reply, whatever its status. Rejects with
 * `StorageTimeoutError` after `timeoutMs`, `StorageAbortedError` when `signal` aborts (at once if it
 * already has), `StorageUnavailableError` when the connection fails (its `cause` is the socket error;
 * a connection closed after the request went out without a reply says so). The request may have been
 * applied in every case but a refused connection.
 */
export function exchange(
  target: Target,
  x: Exchange,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<Reply> {
  const what = x.what;
  // Created here, while the caller is on the stack, so the stack trace points at the caller.
  const timeout = new StorageTimeoutError(`storage ${what} got no answer within ${timeoutMs} ms`);
  if (signal?.aborted) {
    return Promise.reject(new StorageAbortedError(`storage ${what} aborted`, signal.reason));
  }
  return new Promise<Reply>((resolve, reject) => {
    const req = request({
      host: target.host,
      port: target.port,
      method: x.method,
      path: x.path,
      headers: x.headers,
      agent: target.agent,
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const fail = (err: Error) => {
      settle(() => reject(err));
      req.destroy();
    };
    const timer = setTimeout(() => fail(timeout), timeoutMs);
    const onAbort = () => fail(new StorageAbortedError(`storage ${what} aborted`, signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) => fail(connectionError(what, x, target, err)));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REPLY_BYTES) fail(new StorageUnavailableError(`storage ${what}: reply too large`));
        else chunks.push(chunk);
      });
      res.on("end", () =>
        settle(() =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        ),
      );
      res.on("error", (err) =>
        fail(new StorageUnavailableError(`storage ${what} failed: ${err.message}`, err)),
      );
    });
    req.end(x.body ?? undefined);
  });
}

/** Says which of the two it was: nobody listening, or a server that hung up on this request. */
function connectionError(what: string, x: Exchange, t: Target, err: NodeJS.ErrnoException): Error {
  const at = `${t.host}:${t.port}`;
  if (err.code === "ECONNREFUSED") {
    return new StorageUnavailableError(
      `storage ${what} failed: nothing listens at ${at} (${err.message})`,
      err,
    );
  }
  if (err.code === "ECONNRESET" || err.message === "socket hang up") {
    return new StorageUnavailableError(
      `storage ${what} failed: the server at ${at} closed the connection without a reply to ${x.method} ${x.path.slice(0, 100)} (${err.message})`,
      err,
    );
  }
  return new StorageUnavailableError(`storage ${what} failed: ${err.message}`, err);
}
