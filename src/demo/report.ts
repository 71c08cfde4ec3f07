/**
 * How events are printed for people: the seed client's log lines (wall-clock time, then the
 * sentence) and the demo's live lines (time since the start, who, the token, what happened).
 */
import { type DemoEvent, tokenText } from "./events.js";

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** `2026/11/26 10:45:00.123 client 1 starts` — the seed's log format, with milliseconds. */
export function logLine(event: DemoEvent): string {
  const d = new Date(event.timeMs);
  const date = `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return `${date} ${time} ${event.what}`;
}

/** `  +1.234 s  client 1      token 7     acquired lock /lock ...` — one live line of the demo. */
export function liveLine(event: DemoEvent, startMs: number): string {
  const t = `+${((event.timeMs - startMs) / 1000).toFixed(3)} s`.padStart(10);
  const token = event.token === undefined ? "" : `token ${tokenText(event.token)}`;
  return `${t}  ${event.actor.padEnd(13)} ${token.padEnd(11)} ${event.what}`;
}
