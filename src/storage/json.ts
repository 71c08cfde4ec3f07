/**
 * A strict JSON parser (RFC 8259) that keeps every number as its source text, so an int64 such as
 * 9223372036854775807 survives exactly (`JSON.parse` would round it to a double). It also refuses
 * duplicate object keys and nesting deeper than a limit, which `JSON.parse` accepts.
 */

/** A JSON number, as written in the source. */
export class RawNumber {
  constructor(readonly text: string) {}
}

/** A parsed JSON value; objects have no prototype, so `__proto__` is an ordinary key. */
export type JsonValue = null | boolean | string | RawNumber | JsonValue[] | { [key: string]: JsonValue };

/** The text is not valid JSON; `message` says what and where. */
export class JsonSyntaxError extends Error {}

const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

// The parser's state, module-wide: a parse is synchronous and never re-entered, and this spares the
// closures a parse would otherwise allocate (the seed route parses a body per request).
let text = "";
let pos = 0;
let maxDepth = 32;

/** Parses `input`; throws `JsonSyntaxError` on anything that is not one complete JSON value. */
export function parseJson(input: string, depthLimit = 32): JsonValue {
  text = input;
  pos = 0;
  maxDepth = depthLimit;
  try {
    const value = parseValue(0);
    skipSpace();
    if (pos !== text.length) fail("unexpected text after the value");
    return value;
  } finally {
    text = "";
  }
}

function fail(what: string): never {
  const at = pos >= text.length ? "at the end (truncated?)" : `at offset ${pos}`;
  throw new JsonSyntaxError(`${what} ${at}`);
}

function skipSpace(): void {
  while (pos < text.length) {
    const c = text.charCodeAt(pos);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
    pos++;
  }
}

function expect(literal: string): void {
  if (!text.startsWith(literal, pos)) fail(`expected ${literal}`);
  pos += literal.length;
}

/** A string, from its opening quote. */
function parseString(): string {
  pos++;
  let out = "";
  let run = pos;
  for (;;) {
    if (pos >= text.length) fail("unterminated string");
    const c = text.charCodeAt(pos);
    if (c === 0x22) {
      out += text.slice(run, pos);
      pos++;
      return out;
    }
    if (c < 0x20) fail("control character in string");
    if (c !== 0x5c) {
      pos++;
      continue;
    }
    out += text.slice(run, pos);
    const e = text[pos + 1];
    if (e === "u") {
      const hex = text.slice(pos + 2, pos + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
      out += String.fromCharCode(Number.parseInt(hex, 16));
      pos += 6;
    } else {
      const decoded = e === undefined ? undefined : ESCAPES[e];
      if (decoded === undefined) fail("bad escape");
      out += decoded;
      pos += 2;
    }
    run = pos;
  }
}

/** Digits from `pos`; how many. */
function digits(): number {
  const from = pos;
  while (pos < text.length) {
    const c = text.charCodeAt(pos);
    if (c < 0x30 || c > 0x39) break;
    pos++;
  }
  return pos - from;
}

/** A number (RFC 8259 grammar), kept as its text. */
function parseNumber(): RawNumber {
  const from = pos;
  if (text.charCodeAt(pos) === 0x2d) pos++;
  const first = text.charCodeAt(pos);
  if (first === 0x30) pos++;
  else if (first >= 0x31 && first <= 0x39) digits();
  else {
    pos = from;
    return fail("expected a value");
  }
  if (text.charCodeAt(pos) === 0x2e) {
    pos++;
    if (digits() === 0) fail("expected a digit");
  }
  const e = text.charCodeAt(pos);
  if (e === 0x65 || e === 0x45) {
    pos++;
    const sign = text.charCodeAt(pos);
    if (sign === 0x2b || sign === 0x2d) pos++;
    if (digits() === 0) fail("expected a digit");
  }
  return new RawNumber(text.slice(from, pos));
}

function parseValue(depth: number): JsonValue {
  skipSpace();
  const c = text[pos];
  if (c === "{") return parseObject(depth + 1);
  if (c === "[") return parseArray(depth + 1);
  if (c === '"') return parseString();
  if (c === "t" && text.startsWith("true", pos)) {
    pos += 4;
    return true;
  }
  if (c === "f" && text.startsWith("false", pos)) {
    pos += 5;
    return false;
  }
  if (c === "n" && text.startsWith("null", pos)) {
    pos += 4;
    return null;
  }
  return parseNumber();
}

function parseArray(depth: number): JsonValue[] {
  if (depth > maxDepth) fail("nested too deeply");
  pos++;
  const out: JsonValue[] = [];
  skipSpace();
  if (text[pos] === "]") {
    pos++;
    return out;
  }
  for (;;) {
    out.push(parseValue(depth));
    skipSpace();
    if (text[pos] === ",") pos++;
    else if (text[pos] === "]") {
      pos++;
      return out;
    } else fail("expected , or ]");
  }
}

function parseObject(depth: number): { [key: string]: JsonValue } {
  if (depth > maxDepth) fail("nested too deeply");
  pos++;
  const out: { [key: string]: JsonValue } = Object.create(null);
  skipSpace();
  if (text[pos] === "}") {
    pos++;
    return out;
  }
  for (;;) {
    skipSpace();
    if (text[pos] !== '"') fail("expected a member name");
    const name = parseString();
    if (Object.hasOwn(out, name)) fail(`duplicate member "${name}"`);
    skipSpace();
    expect(":");
    out[name] = parseValue(depth);
    skipSpace();
    if (text[pos] === ",") pos++;
    else if (text[pos] === "}") {
      pos++;
      return out;
    } else fail("expected , or }");
  }
}
