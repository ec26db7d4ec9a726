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

/** A command line the command cannot take (exit status 2, as for an unknown command). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The options a usage text names (`--key`), which are all a command takes. */
export function usageOptions(usage: string): Set<string> {
  return new Set([...usage.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
}

/**
 * Throws on an option the command's usage does not name (a typo such as `--rnk 4` would
 * otherwise fall back to the default silently), suggesting the nearest one it does.
 * Everything after a bare `--` is left alone.
 */
export function checkOptions(name: string, usage: string, argv: readonly string[]): void {
  const known = usageOptions(usage);
  const end = argv.indexOf("--");
  for (const a of end < 0 ? argv : argv.slice(0, end)) {
    if (!a.startsWith("--")) continue;
    const key = a.slice(2).split("=")[0];
    if (known.has(key) || key === "help") continue;
    const near = [...known].map((k) => ({ k, d: editDistance(key, k) })).sort((x, y) => x.d - y.d)[0];
    const hint = near && near.d <= 2 ? ` (did you mean --${near.k}?)` : "";
    throw new UsageError(`${name}: unknown option --${key}${hint}; its options: ${[...known].map((k) => `--${k}`).join(", ") || "none"}`);
  }
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
