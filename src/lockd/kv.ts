/**
 * The MVCC record of a key and the change events lockd keeps and sends, with their wire forms.
 */
import type { Event, KeyValue } from "../proto/index.js";
import { toWire } from "../proto/index.js";
import type { HistoryRow } from "./db.js";
import { type KeyString, keyBytes, keyOf } from "./keys.js";

/** A key at one revision: etcd's `mvccpb.KeyValue`, with int64 fields as `bigint`. */
export interface Kv {
  key: KeyString;
  createRev: bigint;
  modRev: bigint;
  version: bigint;
  /**
   * The value as a latin1 string like the key (a small Buffer costs several times its bytes), or `null`
   * for a value longer than `INLINE_VALUE_BYTES`, which stays only in SQLite and is read when needed.
   */
  value: string | null;
  /** Length of the value in bytes. */
  size: number;
  lease: bigint;
}

/**
 * Values up to this length are kept in memory; longer ones are read from the database when asked for.
 * Reading 100,000 values of 100 bytes from SQLite made up a third of a full Range's time.
 */
export const INLINE_VALUE_BYTES = 128;

/** Reads the value of a key whose value is not kept in memory. */
export type ValueLoader = (kv: Kv) => string;

/** The value of `kv`, read through `load` if it is not in memory. */
export function kvValue(kv: Kv, load: ValueLoader): string {
  return kv.value ?? load(kv);
}

// Shared small integers: most keys have a small version and no lease, and a bigint is an object.
const SMALL = Array.from({ length: 256 }, (_, i) => BigInt(i));
function shared(n: bigint): bigint {
  return n >= 0n && n < 256n ? (SMALL[Number(n)] as bigint) : n;
}

/** `Event.EventType` values. */
export const PUT = 0;
/** `Event.EventType` values. */
export const DELETE = 1;

/** One change of one key: a put, or a delete whose `kv` carries only the key and its revision. */
export interface ChangeEvent {
  type: typeof PUT | typeof DELETE;
  kv: Kv;
  /** The key before the change; `undefined` if it did not exist or is no longer known. */
  prev: Kv | undefined;
}

/** Every change one revision made, in order. */
export interface RevisionChanges {
  rev: bigint;
  events: ChangeEvent[];
}

/** An empty value. */
export const EMPTY = Buffer.alloc(0);

/** The record a delete leaves: the key, deleted at `rev`. */
export function tombstone(key: KeyString, rev: bigint): Kv {
  return { key, createRev: 0n, modRev: rev, version: 0n, value: "", size: 0, lease: 0n };
}

/** Reads a `history` row; `keepLong` keeps a long value in memory too (for short-lived records). */
export function kvOfRow(row: HistoryRow, keepLong = true): Kv {
  return {
    key: keyOf(row.key),
    createRev: row.create_rev === row.rev ? row.rev : row.create_rev,
    modRev: row.rev,
    version: shared(row.version),
    value: keepLong || row.value.length <= INLINE_VALUE_BYTES ? row.value.toString("latin1") : null,
    size: row.value.length,
    lease: shared(row.lease),
  };
}

/** The wire form of a key; `keysOnly` leaves the value out. */
export function kvToWire(kv: Kv, load: ValueLoader, keysOnly = false): KeyValue {
  const value = keysOnly || kv.size === 0 ? "" : kvValue(kv, load);
  return {
    key: keyBytes(kv.key),
    create_revision: toWire(kv.createRev),
    mod_revision: toWire(kv.modRev),
    version: toWire(kv.version),
    value: value === "" ? EMPTY : Buffer.from(value, "latin1"),
    lease: toWire(kv.lease),
  };
}

/** The wire form of an event; `prevKv` adds the previous key. */
export function eventToWire(ev: ChangeEvent, prevKv: boolean, load: ValueLoader): Event {
  return {
    type: ev.type,
    kv: kvToWire(ev.kv, load),
    prev_kv: prevKv && ev.prev ? kvToWire(ev.prev, load) : null,
  };
}
