/**
 * The checks every guard makes before it sends anything: a token is a bigint in 1..2^63-1 (an etcd
 * revision), a fence name is non-empty well-formed text that a database can store, a table name is a plain
 * SQL identifier (optionally schema-qualified).
 */
import { MAX_TOKEN } from "../shared/token.js";
import { GuardArgumentError } from "./errors.js";

/** Longest fence name in UTF-8 bytes, the storage server's default limit too. */
export const MAX_FENCE_BYTES = 1024;

/** The table the guards keep fences in unless told otherwise. */
export const DEFAULT_FENCE_TABLE = "fencelock_fences";

/** What every guarded unit of work names: the fence and the holder's token. */
export interface FenceArgs {
  /** The fence's name: one per lock (or per group of rows a lock guards). */
  fence: string;
  /** The lock's fencing token. A `bigint`: never a JavaScript number, which rounds above 2^53. */
  token: bigint;
  /** The fence table; default `fencelock_fences`. */
  table?: string;
}

/** Throws `GuardArgumentError` unless `token` is a bigint in 1..2^63-1. */
export function checkToken(token: unknown): bigint {
  if (typeof token !== "bigint") {
    throw new GuardArgumentError(
      `token must be a bigint (a lock's token), got ${typeof token}${typeof token === "number" ? ": numbers round above 2^53, pass BigInt(...)" : ""}`,
    );
  }
  if (token < 1n) throw new GuardArgumentError(`token must be at least 1, got ${token}`);
  if (token > MAX_TOKEN)
    throw new GuardArgumentError(`token ${token} is above the int64 maximum ${MAX_TOKEN}`);
  return token;
}

/** Throws `GuardArgumentError` unless `name` is a storable fence name. */
export function checkFenceName(name: unknown): string {
  if (typeof name !== "string") throw new GuardArgumentError(`fence must be a string, got ${typeof name}`);
  if (name.length === 0) throw new GuardArgumentError("fence must not be empty");
  if (/\p{Cs}/u.test(name))
    throw new GuardArgumentError("fence must be well-formed Unicode (no lone surrogates)");
  if (name.includes("\0")) throw new GuardArgumentError("fence must not contain NUL");
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_FENCE_BYTES) {
    throw new GuardArgumentError(`fence is ${bytes} bytes; the limit is ${MAX_FENCE_BYTES}`);
  }
  return name;
}

/** Throws `GuardArgumentError` unless `table` is `name` or `schema.name` of lower-case letters, digits, `_`. */
export function checkTable(table: unknown = DEFAULT_FENCE_TABLE): string {
  if (typeof table !== "string" || !/^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/.test(table)) {
    throw new GuardArgumentError(
      `table must be an unquoted SQL name like fencelock_fences or app.fences, got ${JSON.stringify(table)}`,
    );
  }
  return table;
}

/** Checks a unit of work's arguments; returns them with the table defaulted. */
export function checkFenceArgs(args: FenceArgs): Required<FenceArgs> {
  if (typeof args !== "object" || args === null) {
    throw new GuardArgumentError("pass { fence, token } (and optionally table)");
  }
  return { fence: checkFenceName(args.fence), token: checkToken(args.token), table: checkTable(args.table) };
}
