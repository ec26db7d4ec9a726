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
