// A small runtime schema for plain JSON configs, typed against the TypeScript interfaces it checks:
// `fields<T>({...})` must name every key of T, each as `req(...)` or `opt(...)` matching T's
// optionality, so the schema cannot drift from the type. Errors name the dotted path and the
// problem ("strategy.kind: 'lorra' is not one of full, top-k, ..."), and unknown keys are errors.

/** Checks a value found at `at` (a dotted path); throws ConfigError when it does not fit. */
export type Check = (value: unknown, at: string) => void;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const fail = (at: string, what: string): never => {
  throw new ConfigError(`${at || "config"}: ${what}`);
};
const show = (v: unknown) => (typeof v === "string" ? `'${v}'` : JSON.stringify(v));

export const num: Check = (v, at) => {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(at, `expected a finite number, got ${show(v)}`);
};
export const int: Check = (v, at) => {
  if (!Number.isInteger(v)) fail(at, `expected an integer, got ${show(v)}`);
};
export const nonNegInt: Check = (v, at) => {
  if (!Number.isInteger(v) || (v as number) < 0) fail(at, `expected an integer >= 0, got ${show(v)}`);
};
export const posInt: Check = (v, at) => {
  if (!Number.isInteger(v) || (v as number) <= 0) fail(at, `expected a positive integer, got ${show(v)}`);
};
export const positive: Check = (v, at) => {
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) fail(at, `expected a positive number, got ${show(v)}`);
};
export const str: Check = (v, at) => {
  if (typeof v !== "string") fail(at, `expected a string, got ${show(v)}`);
};
export const bool: Check = (v, at) => {
  if (typeof v !== "boolean") fail(at, `expected true or false, got ${show(v)}`);
};

export function oneOf(...values: readonly (string | number)[]): Check {
  return (v, at) => {
    if (!values.includes(v as string | number)) fail(at, `${show(v)} is not one of ${values.join(", ")}`);
  };
}

export function arrayOf(item: Check, opts: { length?: number; nonEmpty?: boolean } = {}): Check {
  return (v, at) => {
    if (!Array.isArray(v)) return fail(at, `expected an array, got ${show(v)}`);
    if (opts.length !== undefined && v.length !== opts.length) fail(at, `expected ${opts.length} values, got ${v.length}`);
    if (opts.nonEmpty && v.length === 0) fail(at, "expected at least one value");
    v.forEach((x, i) => item(x, `${at}[${i}]`));
  };
}

export function anyOf(...checks: Check[]): Check {
  return (v, at) => {
    const errors: string[] = [];
    for (const c of checks) {
      try {
        c(v, at);
        return;
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    fail(at, `no form fits ${show(v)} (${errors.join("; ")})`);
  };
}

interface Field {
  check: Check;
  optional: boolean;
}
export interface Req extends Field { optional: false }
export interface Opt extends Field { optional: true }
export const req = (check: Check): Req => ({ check, optional: false });
export const opt = (check: Check): Opt => ({ check, optional: true });

/**
 * One field per key of T: required keys `req`, optional ones `opt`. (Optionality is read from
 * the `?` modifier, not from `undefined extends T[K]`: tslab compiles without strictNullChecks.)
 */
// eslint-disable-next-line @typescript-eslint/ban-types
export type Fields<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? Opt : Req };

/** An object with exactly these keys (unknown keys are an error naming them and the known ones). */
export function fields<T>(spec: Fields<T>): Check {
  const known = spec as unknown as Record<string, Field>;
  return (v, at) => {
    if (!v || typeof v !== "object" || Array.isArray(v)) return fail(at, `expected an object, got ${show(v)}`);
    const o = v as Record<string, unknown>;
    const path = (k: string) => (at ? `${at}.${k}` : k);
    for (const k of Object.keys(o)) {
      if (!(k in known)) fail(path(k), `unknown key (known here: ${Object.keys(known).join(", ")})`);
    }
    for (const [k, f] of Object.entries(known)) {
      if (o[k] === undefined) {
        if (!f.optional) fail(path(k), "missing");
        continue;
      }
      f.check(o[k], path(k));
    }
  };
}

/** A union told apart by one key (`kind`, `name`): each tag has its own fields. */
export function tagged(key: string, byTag: Record<string, Check>): Check {
  return (v, at) => {
    if (!v || typeof v !== "object" || Array.isArray(v)) return fail(at, `expected an object, got ${show(v)}`);
    const tag = (v as Record<string, unknown>)[key];
    const check = typeof tag === "string" ? byTag[tag] : undefined;
    if (!check) fail(at ? `${at}.${key}` : key, `${show(tag)} is not one of ${Object.keys(byTag).join(", ")}`);
    (check as Check)(v, at);
  };
}
