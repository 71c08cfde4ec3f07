#!/usr/bin/env node
/**
 * The `fencelock` command. Thin: picks the subcommand, whose module parses its own flags and calls the
 * parts. Each subcommand module exports `summary` (one line) and `run(argv)` resolving to an exit code.
 */
import { readFileSync } from "node:fs";
import { FencelockError } from "../shared/errors.js";

/** What a subcommand module exports. */
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  demo: () => import("./commands/demo.js"),
  client: () => import("./commands/client.js"),
  storage: () => import("./commands/storage.js"),
  lockd: () => import("./commands/lockd.js"),
  cluster: () => import("./commands/cluster.js"),
  torture: () => import("./commands/torture.js"),
  fence: () => import("./commands/fence.js"),
  lock: () => import("./commands/lock.js"),
  elect: () => import("./commands/elect.js"),
};

function usage(): string {
  return "usage: fencelock <command> [flags]   (fencelock <command> --help for its flags; fencelock --version)\n";
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v" || name === "version") {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));
    console.log(`fencelock ${pkg.version}`);
    return 0;
  }
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const out = [usage(), "commands:"];
    for (const [n, load] of Object.entries(commands)) out.push(`  ${n.padEnd(10)} ${(await load()).summary}`);
    console.log(out.join("\n"));
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`fencelock: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  return (await load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code = err instanceof FencelockError ? ` [${err.code}]` : "";
    console.error(`fencelock: ${err instanceof Error ? err.message : String(err)}${code}`);
    process.exitCode = 1;
  },
);
