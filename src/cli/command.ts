// The shape every `study` sub-command has, and a small typed argument parser they share.
export interface Command {
  /** One line for `study --help`. */
  summary: string;
  /** Full help text for `study <name> --help`. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

export interface ParsedArgs {
  /** Positional arguments, in order. */
  positional: string[];
  /** `--key value` and `--key=value`; flags without a value are "true". Repeated keys accumulate. */
  options: Map<string, string[]>;
}

/** Parses argv; `booleanFlags` never take a value (so `--force file` keeps `file` positional). */
export function parseArgs(argv: string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string[]>();
  const add = (k: string, v: string) => options.set(k, [...(options.get(k) ?? []), v]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) add(a.slice(2, eq), a.slice(eq + 1));
    else if (booleanFlags.includes(a.slice(2)) || i + 1 >= argv.length || argv[i + 1].startsWith("--")) add(a.slice(2), "true");
    else add(a.slice(2), argv[++i]);
  }
  return { positional, options };
}

/** The last value of an option, or the fallback. */
export function opt(args: ParsedArgs, key: string, fallback?: string): string | undefined {
  const v = args.options.get(key);
  return v && v.length ? v[v.length - 1] : fallback;
}

/** A numeric option; a value that is not a number is a usage error naming the option. */
export function numOpt(args: ParsedArgs, key: string, fallback?: number): number | undefined {
  const v = opt(args, key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} expects a number, got '${v}'`);
  return n;
}
