/**
 * Fencing tokens as text. A token is an integer in 1..2^63-1 (an etcd revision). It crosses the wire as
 * decimal digits (a header, a JSON string, or a seed-protocol JSON number kept as its raw text) and
 * becomes a `bigint` without ever passing through a JavaScript `number`.
 */

import { MAX_TOKEN } from "../shared/token.js";

export { MAX_TOKEN };

/** The result of parsing a token: the value, or why it is not one. */
export type TokenParse = { ok: true; token: bigint } | { ok: false; reason: string };

/**
 * Parses `text` as a token in canonical decimal form: digits only, no sign, no leading zero, no
 * fraction, no exponent, at most 2^63-1. Zero parses (callers decide what it means).
 */
export function parseTokenText(text: string): TokenParse {
  if (/^(0|[1-9][0-9]{0,18})$/.test(text)) {
    const token = BigInt(text);
    if (token <= MAX_TOKEN) return { ok: true, token };
    return { ok: false, reason: "is above the int64 maximum 9223372036854775807" };
  }
  if (/^-/.test(text)) return { ok: false, reason: "must not be negative" };
  if (/^[0-9]+$/.test(text)) {
    return text.length > 1 && text.startsWith("0")
      ? { ok: false, reason: "must not have leading zeros" }
      : { ok: false, reason: "is above the int64 maximum 9223372036854775807" };
  }
  if (/^[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+$/.test(text)) {
    return { ok: false, reason: "must be plain decimal digits, not exponent form" };
  }
  if (/^[0-9]+\.[0-9]+$/.test(text)) return { ok: false, reason: "must be an integer, not a fraction" };
  return { ok: false, reason: "must be decimal digits" };
}
