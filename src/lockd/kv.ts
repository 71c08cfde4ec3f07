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
  value: Buffer;
  lease: bigint;
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
  return { key, createRev: 0n, modRev: rev, version: 0n, value: EMPTY, lease: 0n };
}

/** Reads a `history` row. */
export function kvOfRow(row: HistoryRow): Kv {
  return {
    key: keyOf(row.key),
    createRev: row.create_rev,
    modRev: row.rev,
    version: row.version,
    value: row.value,
    lease: row.lease,
  };
}

/** The wire form of a key; `keysOnly` leaves the value out. */
export function kvToWire(kv: Kv, keysOnly = false): KeyValue {
  return {
    key: keyBytes(kv.key),
    create_revision: toWire(kv.createRev),
    mod_revision: toWire(kv.modRev),
    version: toWire(kv.version),
    value: keysOnly ? EMPTY : kv.value,
    lease: toWire(kv.lease),
  };
}

/** The wire form of an event; `prevKv` adds the previous key. */
export function eventToWire(ev: ChangeEvent, prevKv: boolean): Event {
  return {
    type: ev.type,
    kv: kvToWire(ev.kv),
    prev_kv: prevKv && ev.prev ? kvToWire(ev.prev) : null,
  };
}
