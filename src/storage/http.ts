/**
 * Writing replies of the storage server: JSON and problem+json (bytes go through `res.send`).
 */
import { type ProblemCode, problemSpec } from "./registry.js";
import type { Http1Response } from "./transport.js";

/** Sends a JSON text (already serialized, so int64 fields can be written exactly). */
export function sendJson(res: Http1Response, status: number, json: string): void {
  res.send(status, "application/json", json);
}

/**
 * The body of an RFC 9457 problem: `type`, `title`, `status` from the registry, the stable `code`, a
 * `detail` for people, and `extra` fields (int64 values as decimal strings).
 */
export function problemBody(
  code: ProblemCode,
  detail: string,
  extra: Record<string, string | number | null> = {},
): string {
  const spec = problemSpec(code);
  const body = {
    type: `urn:fencelock:problem:${code}`,
    title: spec.title,
    status: spec.status,
    code,
    detail,
  };
  return JSON.stringify({ ...body, ...extra });
}

/** Sends an RFC 9457 problem (see `problemBody`) with the registry's status. */
export function sendProblem(
  res: Http1Response,
  code: ProblemCode,
  detail: string,
  extra: Record<string, string | number | null> = {},
): void {
  res.send(problemSpec(code).status, "application/problem+json", problemBody(code, detail, extra));
}
