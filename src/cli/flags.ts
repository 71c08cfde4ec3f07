/**
 * What every subcommand's flag parsing shares, so the commands speak one vocabulary: a mistyped flag
 * answered with the nearest real one, durations written the same way everywhere (`3s`, `500ms`, `2m`; a
 * bare number is seconds), `--listen HOST:PORT`, one rule for where servers keep their data, and output
 * paths checked before a run starts.
 */
import { accessSync, constants, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";

/** Edit distance between two short strings (flag names). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * The message for an error of `node:util`'s `parseArgs`: for an unknown flag, the nearest known one as a
 * "did you mean"; otherwise the error's own message.
 */
export function flagError(err: unknown, options: Record<string, unknown>): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '(-{1,2})([^']+)'/.exec(message);
  if ((err as { code?: unknown }).code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION" || !unknown) return message;
  const name = unknown[2] as string;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of Object.keys(options)) {
    const d = distance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const close = best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3));
  return `unknown flag ${unknown[1]}${name}${close ? `; did you mean --${best}?` : ""}`;
}

/**
 * Parses a duration: `500ms`, `3s`, `1.5s`, `2m`, `1h`, or a bare number of seconds. Returns milliseconds, or
 * `undefined` when `text` is none of these or is outside `[minMs, maxMs]` (default: up to 2^31-1 ms, the
 * longest timer Node runs).
 */
export function parseDuration(text: string, minMs = 0, maxMs = 2 ** 31 - 1): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"] ?? 1000;
  const ms = Math.round(Number(m[1]) * unit);
  return Number.isFinite(ms) && ms >= minMs && ms <= maxMs ? ms : undefined;
}

/**
 * `parseArgs` whose errors say, for a mistyped flag, which flag was probably meant. Throws an `Error` with
 * that message; the command turns it into its usage error (exit code 2).
 */
export function parseFlags<const T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new Error(flagError(err, config.options ?? {}), { cause: err });
  }
}

/** Parses `--listen HOST:PORT` (`[v6]:PORT` too); `undefined` when malformed or the port is over 65535. */
export function parseListen(listen: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port <= 65535 ? { host: (m[1] ?? m[2]) as string, port } : undefined;
}

/**
 * Where a server keeps its data unless told otherwise, the one rule for every fencelock server:
 * `$XDG_STATE_HOME/fencelock/<server>`, else `~/.local/state/fencelock/<server>`.
 */
export function defaultDataDir(server: "lockd" | "storage" | "cluster"): string {
  const state = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(state, "fencelock", server);
}

/**
 * Checks, before a run starts, that an output file can be written: its directory exists and is writable,
 * and the path is not a directory. Returns why not, or `undefined` when it can.
 */
export function unwritablePath(path: string): string | undefined {
  const full = resolve(path);
  try {
    if (statSync(full, { throwIfNoEntry: false })?.isDirectory()) return `${path} is a directory`;
    accessSync(dirname(full), constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return code === "ENOENT"
      ? `the directory ${dirname(full)} does not exist`
      : `cannot write to ${dirname(full)}`;
  }
}

/** A lease TTL: whole seconds from 1 to `maxSeconds`, written `2` or `2s`; `undefined` otherwise. */
export function parseTtl(text: string, maxSeconds: number): number | undefined {
  const ms = parseDuration(text, 1000, maxSeconds * 1000);
  return ms === undefined || ms % 1000 !== 0 ? undefined : ms / 1000;
}

/**
 * Runs a command's flag parser and answers `--help`, the start every command shares: the parsed flags,
 * or an exit code once it has answered (0 after printing `help`; whatever `fail` returns for a parse
 * error, with the parser's message).
 */
export function parsedOrAnswered<T extends { values: { help?: boolean | undefined } }>(
  parse: () => T,
  help: string,
  fail: (message: string) => number,
): T | number {
  let parsed: T;
  try {
    parsed = parse();
  } catch (err) {
    return fail((err as Error).message);
  }
  if (parsed.values.help) {
    console.log(help);
    return 0;
  }
  return parsed;
}
