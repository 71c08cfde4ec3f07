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

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings.
const PLAIN_STRING = /[^"\\\u0000-\u001f]*/y;
const LITERALS: [string, boolean | null][] = [
  ["true", true],
  ["false", false],
  ["null", null],
];
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

/** Parses `text`; throws `JsonSyntaxError` on anything that is not one complete JSON value. */
export function parseJson(text: string, maxDepth = 32): JsonValue {
  let pos = 0;

  const fail = (what: string): never => {
    const at = pos >= text.length ? "at the end (truncated?)" : `at offset ${pos}`;
    throw new JsonSyntaxError(`${what} ${at}`);
  };
  const skipSpace = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      pos++;
    }
  };
  const expect = (literal: string) => {
    if (!text.startsWith(literal, pos)) fail(`expected ${literal}`);
    pos += literal.length;
  };

  const parseString = (): string => {
    pos++; // opening quote
    let out = "";
    for (;;) {
      PLAIN_STRING.lastIndex = pos;
      PLAIN_STRING.test(text);
      out += text.slice(pos, PLAIN_STRING.lastIndex);
      pos = PLAIN_STRING.lastIndex;
      if (pos >= text.length) fail("unterminated string");
      const c = text[pos];
      if (c === '"') {
        pos++;
        return out;
      }
      if (c !== "\\") fail("control character in string");
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
    }
  };

  const literal = (): boolean | null => {
    for (const [word, value] of LITERALS) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    return fail("expected a value");
  };

  const parseValue = (depth: number): JsonValue => {
    skipSpace();
    const c = text[pos];
    if (c === "{") return parseObject(depth + 1);
    if (c === "[") return parseArray(depth + 1);
    if (c === '"') return parseString();
    if (c === "t" || c === "f" || c === "n") return literal();
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) return fail("expected a value");
    pos = NUMBER.lastIndex;
    return new RawNumber(m[0]);
  };

  const parseArray = (depth: number): JsonValue[] => {
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
  };

  const parseObject = (depth: number): { [key: string]: JsonValue } => {
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
  };

  const value = parseValue(0);
  skipSpace();
  if (pos !== text.length) fail("unexpected text after the value");
  return value;
}
