/** The bounds of a fencing token, shared by every part that checks one. */

/** The largest int64, the largest token (an etcd revision never exceeds it). */
export const MAX_TOKEN = 9223372036854775807n;
