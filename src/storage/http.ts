/**
 * HTTP plumbing of the server: reading a bounded body, and writing replies (JSON, problem+json, bytes).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type ProblemCode, problemSpec } from "./registry.js";

/** What reading a body came to. */
export type Body =
  | { kind: "ok"; bytes: Buffer }
  /** Over the limit. `drained`: the rest was read and dropped, so the connection can be kept. */
  | { kind: "too-large"; size: number; drained: boolean }
  /** The client went away (or the socket failed) before the body ended; nobody to answer. */
  | { kind: "gone" };

/**
 * Reads the body up to `limit` bytes. Past the limit it keeps reading and dropping up to `discardCap`
 * bytes so the refusal can be answered on a healthy connection; a bigger body is refused at once and
 * its connection closed after the reply.
 */
export function readBody(req: IncomingMessage, limit: number, discardCap: number): Promise<Body> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > discardCap) {
    return Promise.resolve({ kind: "too-large", size: Number(declared), drained: false });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (body: Body) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      resolve(body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > discardCap) done({ kind: "too-large", size, drained: false });
    };
    const onEnd = () => {
      if (size > limit) done({ kind: "too-large", size, drained: true });
      else done({ kind: "ok", bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) });
    };
    const onGone = () => done({ kind: "gone" });
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}

/** Sends `body` with `status` and `contentType`. */
export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer): void {
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", typeof body === "string" ? Buffer.byteLength(body) : body.length);
  res.end(body);
}

/** Sends a JSON text (already serialized, so int64 fields can be written exactly). */
export function sendJson(res: ServerResponse, status: number, json: string): void {
  send(res, status, "application/json", json);
}

/**
 * Sends an RFC 9457 problem: `type`, `title`, `status` from the registry, the stable `code`, a `detail`
 * for people, and `extra` fields (int64 values as decimal strings).
 */
export function sendProblem(
  res: ServerResponse,
  code: ProblemCode,
  detail: string,
  extra: Record<string, string | number | null> = {},
): void {
  const spec = problemSpec(code);
  const body = {
    type: `urn:fencelock:problem:${code}`,
    title: spec.title,
    status: spec.status,
    code,
    detail,
  };
  send(res, spec.status, "application/problem+json", JSON.stringify({ ...body, ...extra }));
}
