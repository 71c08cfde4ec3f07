/**
 * The one table of every error the storage server answers with: stable code, HTTP status, title.
 * `docs/errors.md` documents the same table; a test fails when the two drift apart.
 */

/** Every problem code the server can answer with. */
export type ProblemCode =
  | "BAD_REQUEST"
  | "TOKEN_REQUIRED"
  | "UNAUTHORIZED"
  | "ADMIN_DISABLED"
  | "NOT_FOUND"
  | "KEY_NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "REQUEST_TIMEOUT"
  | "STALE_FENCING_TOKEN"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "EXPECTATION_FAILED"
  | "HEADERS_TOO_LARGE"
  | "INTERNAL";

/** One row of the registry. */
export interface ProblemSpec {
  readonly code: ProblemCode;
  readonly status: number;
  readonly title: string;
}

/** The registry, in the order `docs/errors.md` lists it. */
export const PROBLEMS: readonly ProblemSpec[] = [
  { code: "BAD_REQUEST", status: 400, title: "The request is malformed" },
  { code: "TOKEN_REQUIRED", status: 400, title: "A write needs a fencing token" },
  { code: "UNAUTHORIZED", status: 401, title: "Missing or wrong bearer token" },
  { code: "ADMIN_DISABLED", status: 403, title: "The server runs without --auth-token" },
  { code: "NOT_FOUND", status: 404, title: "No such route" },
  { code: "KEY_NOT_FOUND", status: 404, title: "No such key" },
  { code: "METHOD_NOT_ALLOWED", status: 405, title: "Method not allowed on this route" },
  { code: "REQUEST_TIMEOUT", status: 408, title: "The request was not received in time" },
  { code: "STALE_FENCING_TOKEN", status: 409, title: "The fencing token is older than one already seen" },
  { code: "PAYLOAD_TOO_LARGE", status: 413, title: "Body, key or value over the limit" },
  { code: "UNSUPPORTED_MEDIA_TYPE", status: 415, title: "Wrong content type" },
  { code: "EXPECTATION_FAILED", status: 417, title: "Unsupported Expect header" },
  { code: "HEADERS_TOO_LARGE", status: 431, title: "Request headers over the limit" },
  { code: "INTERNAL", status: 500, title: "The server failed to complete the request" },
];

const byCode = new Map<ProblemCode, ProblemSpec>(PROBLEMS.map((p) => [p.code, p]));

/** The registry row of `code`. */
export function problemSpec(code: ProblemCode): ProblemSpec {
  const spec = byCode.get(code);
  if (!spec) throw new RangeError(`unknown problem code ${code}`);
  return spec;
}
