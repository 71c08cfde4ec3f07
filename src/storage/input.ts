/**
 * Validation at the edge: names (keys and fences), limits, path segments and the fencing-token header.
 * Each check returns a problem (code and a sentence for the caller) or the clean value.
 */
import type { ProblemCode } from "./registry.js";
import { parseTokenText } from "./token.js";

/** Size limits of one request. */
export interface Limits {
  /** Largest key or fence name, in UTF-8 bytes. Default 1024. */
  maxKeyBytes: number;
  /** Largest value, in bytes. Default 1 MiB. */
  maxValueBytes: number;
  /** Largest request body, in bytes. Default the value limit plus 64 KiB (JSON framing and escapes). */
  maxBodyBytes: number;
}

/** The default limits. */
export const DEFAULT_LIMITS: Limits = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxBodyBytes: 1024 * 1024 + 64 * 1024,
};

/** A refusal: which registry code, and what to tell the caller. */
export interface Problem {
  code: ProblemCode;
  detail: string;
}

/** Either the clean value or a problem. */
export type Checked<T> = { ok: true; value: T } | { ok: false; problem: Problem };

/** A key or fence name: non-empty, well-formed Unicode, at most `maxBytes` UTF-8 bytes. */
export function checkName(name: string, what: string, maxBytes: number): Checked<string> {
  if (name.length === 0) return bad("BAD_REQUEST", `${what} must not be empty`);
  if (!name.isWellFormed()) return bad("BAD_REQUEST", `${what} is not well-formed Unicode`);
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > maxBytes) {
    return bad("PAYLOAD_TOO_LARGE", `${what} is ${bytes} bytes, over the limit of ${maxBytes}`);
  }
  return { ok: true, value: name };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes UTF-8 bytes strictly; `undefined` if they are not valid UTF-8 (a lenient decoder would turn
 * them into U+FFFD and silently merge distinct keys).
 */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Decodes a percent-encoded path segment or header value to a name. Node gives raw non-ASCII bytes of
 * the request line as latin1 characters; they must form valid UTF-8, as must every `%XX` sequence.
 */
export function decodeName(raw: string, what: string, maxBytes: number): Checked<string> {
  let text = raw;
  if (/[\u0080-\uffff]/.test(raw)) {
    const decoded = decodeUtf8(Buffer.from(raw, "latin1"));
    if (decoded === undefined) return bad("BAD_REQUEST", `${what} is not valid UTF-8`);
    text = decoded;
  }
  let name: string;
  try {
    name = decodeURIComponent(text);
  } catch {
    return bad("BAD_REQUEST", `${what} has a bad percent-encoding or is not valid UTF-8`);
  }
  return checkName(name, what, maxBytes);
}

/**
 * The `Fencing-Token` header: absent means no token (`null`); present, it must be a canonical decimal
 * int64 of at least 1.
 */
export function checkTokenHeader(value: string | undefined): Checked<bigint | null> {
  if (value === undefined) return { ok: true, value: null };
  const parsed = parseTokenText(value.trim());
  if (!parsed.ok) return bad("BAD_REQUEST", `Fencing-Token ${parsed.reason}`);
  if (parsed.token === 0n) {
    return bad("BAD_REQUEST", "Fencing-Token must be at least 1; omit the header for an unfenced request");
  }
  return { ok: true, value: parsed.token };
}

/** Shorthand for a refusal. */
export function bad<T>(code: ProblemCode, detail: string): Checked<T> {
  return { ok: false, problem: { code, detail } };
}
