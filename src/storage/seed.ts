/**
 * The seed-compatible protocol (etcd's contrib/lock storage): `POST /` with
 * `{"op":"read"|"write","key","val","version"}`, answered with `{"val","version","err"}` (plus `code`
 * on errors). `version` is the fencing token as a JSON number and is kept as its digits, never as a
 * double; the seed's Go client always sends its lease ID there, which increases only on one etcd member
 * or one lockd (docs/storage.md). `version` 0, null or absent means no token. An optional `fence` names
 * the scope; the default is the key.
 */
import { bad, type Checked, checkName, type Limits } from "./input.js";
import { type JsonValue, parseJson, RawNumber } from "./json.js";
import { parseTokenText } from "./token.js";

/** A valid seed request. */
export interface SeedRequest {
  op: "read" | "write";
  key: string;
  fence: string;
  /** `null`: no token (absent, null or 0). */
  token: bigint | null;
  /** The value of a write, UTF-8 encoded. */
  value: Buffer | null;
}

const FIELDS = new Set(["op", "key", "val", "version", "fence"]);

/** Parses and validates a request body (already decoded from UTF-8). */
export function parseSeedRequest(text: string, limits: Limits): Checked<SeedRequest> {
  if (text.trim().length === 0) return bad("BAD_REQUEST", "empty body: expected a JSON object");
  let doc: JsonValue;
  try {
    doc = parseJson(text);
  } catch (err) {
    return bad("BAD_REQUEST", `malformed JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || doc instanceof RawNumber || Array.isArray(doc)) {
    return bad("BAD_REQUEST", `expected a JSON object, got ${describe(doc)}`);
  }
  for (const name of Object.keys(doc)) {
    if (!FIELDS.has(name)) return bad("BAD_REQUEST", `unknown field "${name.slice(0, 64)}"`);
  }
  const { op, key, val, version, fence } = doc;
  if (op === undefined) return bad("BAD_REQUEST", 'missing field "op"');
  if (op !== "read" && op !== "write") {
    return bad("BAD_REQUEST", `"op" must be "read" or "write", got ${describe(op)}`);
  }
  if (key === undefined) return bad("BAD_REQUEST", 'missing field "key"');
  if (typeof key !== "string") return bad("BAD_REQUEST", `"key" must be a string, got ${describe(key)}`);
  const k = checkName(key, "key", limits.maxKeyBytes);
  if (!k.ok) return k;
  let fenceName = key;
  if (fence !== undefined) {
    if (typeof fence !== "string")
      return bad("BAD_REQUEST", `"fence" must be a string, got ${describe(fence)}`);
    const f = checkName(fence, "fence", limits.maxKeyBytes);
    if (!f.ok) return f;
    fenceName = fence;
  }
  const token = parseVersion(version);
  if (!token.ok) return token;
  let value: Buffer | null = null;
  if (op === "write") {
    if (val === undefined) return bad("BAD_REQUEST", 'missing field "val" (a write needs a value)');
    if (typeof val !== "string") return bad("BAD_REQUEST", `"val" must be a string, got ${describe(val)}`);
    if (!val.isWellFormed()) return bad("BAD_REQUEST", '"val" is not well-formed Unicode');
    value = Buffer.from(val, "utf8");
    if (value.length > limits.maxValueBytes) {
      return bad(
        "PAYLOAD_TOO_LARGE",
        `"val" is ${value.length} bytes, over the limit of ${limits.maxValueBytes}`,
      );
    }
  } else if (val !== undefined && typeof val !== "string") {
    return bad("BAD_REQUEST", `"val" must be a string, got ${describe(val)}`);
  }
  return { ok: true, value: { op, key, fence: fenceName, token: token.value, value } };
}

/** `version`: a JSON number (or decimal string) in 0..2^63-1; 0, null or absent is no token. */
function parseVersion(version: JsonValue | undefined): Checked<bigint | null> {
  if (version === undefined || version === null) return { ok: true, value: null };
  let text: string;
  if (version instanceof RawNumber) text = version.text;
  else if (typeof version === "string") text = version;
  else return bad("BAD_REQUEST", `"version" must be an int64 number, got ${describe(version)}`);
  const parsed = parseTokenText(text);
  if (!parsed.ok) return bad("BAD_REQUEST", `"version" ${parsed.reason}, got ${text.slice(0, 40)}`);
  return { ok: true, value: parsed.token === 0n ? null : parsed.token };
}

function describe(v: JsonValue | undefined): string {
  if (v === null) return "null";
  if (v instanceof RawNumber) return `the number ${v.text.slice(0, 40)}`;
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.slice(0, 40))}`;
  return typeof v === "object" ? "an object" : `${v}`;
}

/** A seed reply body: `version` is written as an exact JSON number (0 when the fence has no token). */
export function seedReply(val: string, maxToken: bigint | null, err: string, code?: string): string {
  const version = (maxToken ?? 0n).toString();
  const tail = code ? `,"code":${JSON.stringify(code)}` : "";
  return `{"val":${JSON.stringify(val)},"version":${version},"err":${JSON.stringify(err)}${tail}}`;
}
