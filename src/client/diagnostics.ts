/**
 * Observability of the lock algorithm through a named `diagnostics_channel`, so tools and benchmarks can
 * count what happens without touching the client: subscribe to `LOCK_CHANNEL` with
 * `diagnostics_channel.subscribe(LOCK_CHANNEL, (message) => …)`. Publishing costs nothing without
 * subscribers.
 */
import diagnostics_channel from "node:diagnostics_channel";

/** The channel name. */
export const LOCK_CHANNEL = "fencelock:client:lock";

/**
 * One step of a `lock()`/`tryLock()`/`unlock()`: `queued` — it starts waiting for a predecessor's
 * deletion (once per attempt); `wake` — a watch event was delivered to the waiter (one per event), or the
 * read at the watch's start found the predecessor already gone; `acquired`; `released` — unlocked;
 * `cancelled` — the attempt ended without the lock and its key was removed.
 */
export interface LockEvent {
  event: "queued" | "wake" | "acquired" | "released" | "cancelled";
  /** The lock name. */
  name: string;
  /** The caller's key, `<name>/<leaseId hex>`. */
  key: string;
  /** The create revision of the caller's key (the token once acquired); 0n if not known. */
  revision: bigint;
}

const channel = diagnostics_channel.channel(LOCK_CHANNEL);

/** Publishes a lock event if anyone listens. */
export function publish(event: LockEvent): void {
  if (channel.hasSubscribers) channel.publish(event);
}
