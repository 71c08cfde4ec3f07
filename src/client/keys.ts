/** The key layout of etcd's Go `concurrency.Mutex` and `etcdctl lock`, byte for byte. */

/** The prefix every key of lock `name` has: `name + "/"`. */
export function lockPrefix(name: string): string {
  return `${name}/`;
}

/** The key of `leaseId`'s entry in lock `name`: the prefix and the lease id in lowercase hex, like Go's `%x`. */
export function lockKey(name: string, leaseId: bigint): string {
  return `${lockPrefix(name)}${leaseId.toString(16)}`;
}

/** The end of the range of every key starting with `prefix` (etcd's prefix range end). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  // All bytes 0xff: every key after the prefix, as etcd spells it.
  return Buffer.from([0]);
}
