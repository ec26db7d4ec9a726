// Means and spreads over seeds, for the studies' tables.

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN;
}

/** Sample standard deviation (n - 1); 0 for a single value, NaN for none. */
export function std(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  if (xs.length === 1) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Rounds to `digits` decimals (for tables; CSVs of raw rows keep full precision). */
export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Groups rows by the values of `keys`, in first-seen order. */
export function groupRows<R extends Record<string, unknown>>(rows: readonly R[], keys: readonly string[]): { key: Record<string, unknown>; rows: R[] }[] {
  const groups = new Map<string, { key: Record<string, unknown>; rows: R[] }>();
  for (const r of rows) {
    const key = Object.fromEntries(keys.map((k) => [k, r[k]]));
    const id = JSON.stringify(key);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { key, rows: [] }));
    g.rows.push(r);
  }
  return [...groups.values()];
}

/** An accuracy in percent: its mean over seeds, the seeds' sample spread, how many seeds, and the images each was scored on. */
export interface Accuracy {
  mean: number;
  std: number;
  seeds: number;
  n: number;
}

/**
 * The standard error (points) of a mean accuracy: the test set's binomial noise, sqrt(p(1-p)/n),
 * which more seeds do not average out (every seed is scored on the same images), and the seeds'
 * spread over sqrt(seeds). NaN when n is unknown.
 */
export function accuracySe(a: Accuracy): number {
  const p = a.mean / 100;
  const binomial = 100 * Math.sqrt((p * (1 - p)) / a.n);
  return Math.sqrt(binomial ** 2 + (a.seeds > 1 ? a.std ** 2 / a.seeds : 0));
}

/** The standard error (points) of a - b, the two taken as independent. */
export function differenceSe(a: Accuracy, b: Accuracy): number {
  return Math.sqrt(accuracySe(a) ** 2 + accuracySe(b) ** 2);
}

/** A comparison's outcome: true, false, or neither at two standard errors. */
export type Verdict = boolean | "within noise";

/**
 * Whether `a` exceeds `b` by more than `margin` points, at two standard errors of the difference:
 * true above margin + 2 SE, false below margin - 2 SE, "within noise" between. The errors are
 * taken as independent, which overstates the noise of two models scored on the same images (a
 * paired test would need per-image predictions): a verdict either way is a safe one.
 */
export function exceeds(a: Accuracy, b: Accuracy, margin = 0): Verdict {
  const se = differenceSe(a, b);
  if (!Number.isFinite(se)) throw new Error(`exceeds: the standard error is not finite (n = ${a.n} and ${b.n} images)`);
  const d = a.mean - b.mean - margin;
  return d > 2 * se ? true : d < -2 * se ? false : "within noise";
}
