// `study <command> [...]`: the command-line face of the library. Each command lives in
// src/cli/commands/<name>.ts and exports `command: Command`; this file only dispatches.
import { Command, UsageError, checkOptions } from "./command";

const COMMANDS: Record<string, () => Command> = {
  run: () => require("./commands/run").command,
  reproduce: () => require("./commands/reproduce").command,
  params: () => require("./commands/params").command,
  parity: () => require("./commands/parity").command,
  train: () => require("./commands/train").command,
  eval: () => require("./commands/eval").command,
  backend: () => require("./commands/backend").command,
  bench: () => require("./commands/bench").command,
  results: () => require("./commands/results").command,
  worker: () => require("./commands/worker").command,
};

function usage(): string {
  const lines = ["usage: study <command> [options]", "", "commands:"];
  for (const [name, load] of Object.entries(COMMANDS)) {
    let summary = "";
    try {
      summary = load().summary;
    } catch {
      summary = "(not available)";
    }
    lines.push(`  ${name.padEnd(10)} ${summary}`);
  }
  lines.push("", "`study <command> --help` for a command's options.");
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`study: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const command = load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.usage);
    return 0;
  }
  try {
    checkOptions(name, command.usage, rest);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`study: ${e.message}\n\n\`study ${name} --help\` for its usage.`);
    return 2;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A webgpu backend (Dawn) keeps the event loop alive; exit explicitly once done.
    setImmediate(() => process.exit(code));
  },
  (e: unknown) => {
    console.error(`study: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.STUDY_DEBUG && e instanceof Error) console.error(e.stack);
    process.exit(1);
  },
);
