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

/** The test set's binomial noise of an accuracy (points), sqrt(p(1-p)/n); NaN when n is unknown. */
function binomialSe(a: Accuracy): number {
  const p = a.mean / 100;
  return 100 * Math.sqrt((p * (1 - p)) / a.n);
}

/** The seeds' spread over sqrt(seeds), the part of a mean's error that more seeds average out. */
const seedSe = (x: { std: number; seeds: number }) => (x.seeds > 1 ? x.std / Math.sqrt(x.seeds) : 0);

/**
 * The standard error (points) of a mean accuracy: the test set's binomial noise, which more seeds
 * do not average out (every seed is scored on the same images), and the seeds' spread over
 * sqrt(seeds). NaN when n is unknown.
 */
export function accuracySe(a: Accuracy): number {
  return Math.hypot(binomialSe(a), seedSe(a));
}

/** A mean that is not one accuracy (an average of two), with its standard error in points. */
export interface Estimate {
  mean: number;
  std: number;
  seeds: number;
  se: number;
}

/**
 * The mean of accuracies on separate image sets (a mean over retention sets), per seed averaged:
 * `perSeed` is that mean and the seeds' spread of it; the binomial terms add in quadrature over
 * the sets' count squared.
 */
export function meanOfSets(sets: readonly Accuracy[], perSeed: { mean: number; std: number; seeds: number }): Estimate {
  const binomial = Math.hypot(...sets.map(binomialSe)) / sets.length;
  return { ...perSeed, se: Math.hypot(binomial, seedSe(perSeed)) };
}

/**
 * The mean over seeds of (a + b) / 2, two accuracies scored on separate image sets (Table 1's
 * mean of target and retention): `perSeed` is that mean and the seeds' spread of it.
 */
export const average = (a: Accuracy, b: Accuracy, perSeed: { mean: number; std: number }): Estimate => meanOfSets([a, b], { ...perSeed, seeds: a.seeds });

/** What a claim compares: one accuracy, or an estimate that carries its own error. */
export type Measured = Accuracy | Estimate;

const seOf = (x: Measured) => ("se" in x ? x.se : accuracySe(x));
const noiseOf = (x: Measured) => ("se" in x ? `SE ${x.se}` : `n = ${x.n} images`);

/**
 * The relative loss (percent) from `before` to `after`, 100 (before - after) / before, with its
 * error to first order (the two taken as independent, as `differenceSe`).
 */
export function relativeLoss(before: Measured, after: Measured): Estimate {
  const ratio = after.mean / before.mean;
  const se = (100 * Math.hypot(seOf(after), ratio * seOf(before))) / before.mean;
  return { mean: 100 * (1 - ratio), std: 0, seeds: after.seeds, se };
}

/** k times an estimate (a share of a loss: "within a quarter of FLYP's"). */
export const scaled = (x: Measured, k: number): Estimate => ({ mean: k * x.mean, std: k * x.std, seeds: x.seeds, se: k * seOf(x) });

/** A number the paper states, as an estimate without error (a threshold to compare with). */
export const exact = (mean: number): Estimate => ({ mean, std: 0, seeds: 1, se: 0 });

/** The standard error (points) of a - b, the two taken as independent. */
export function differenceSe(a: Measured, b: Measured): number {
  return Math.hypot(seOf(a), seOf(b));
}

/** A comparison's outcome: true, false, or neither at two standard errors. */
export type Verdict = boolean | "within noise";

/**
 * Whether `a` exceeds `b` by more than `margin` points, at two standard errors of the difference:
 * true above margin + 2 SE, false below margin - 2 SE, "within noise" between. The errors are
 * taken as independent, which overstates the noise of two models scored on the same images (a
 * paired test would need per-image predictions): a verdict either way is a safe one.
 */
export function exceeds(a: Measured, b: Measured, margin = 0): Verdict {
  const se = differenceSe(a, b);
  if (!Number.isFinite(se)) throw new Error(`exceeds: the standard error is not finite (${noiseOf(a)} and ${noiseOf(b)})`);
  const d = a.mean - b.mean - margin;
  return d > 2 * se ? true : d < -2 * se ? false : "within noise";
}

/**
 * Comparisons that must all hold: no when one fails, yes when all hold, else within noise.
 * Undefined (not judged) when there are none or one is not judged.
 */
export function every(vs: readonly (Verdict | undefined)[]): Verdict | undefined {
  if (!vs.length || vs.includes(undefined)) return undefined;
  return vs.includes(false) ? false : vs.every((v) => v === true) ? true : "within noise";
}

/** Comparisons of which one must hold: yes when one does, no when all fail, else within noise; undefined as `every`. */
export function some(vs: readonly (Verdict | undefined)[]): Verdict | undefined {
  if (!vs.length || vs.includes(undefined)) return undefined;
  return vs.includes(true) ? true : vs.every((v) => v === false) ? false : "within noise";
}
