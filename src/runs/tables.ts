// Runs as arquero tables (arquero is ESM-only; Node >= 20.19 loads it through require).
import type { ColumnTable } from "arquero";
import { Run, listRuns } from "./store";
import { arquero } from "../plotting/table";

const aq = arquero;

/** Flattens nested objects into dotted columns: {optimizer: {lr}} -> "optimizer.lr". */
export function flatten(obj: Record<string, unknown>, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = Array.isArray(v) ? JSON.stringify(v) : v;
  }
  return out;
}

/** One row per finished run: id, flattened config (prefixed `config.`), flattened results. */
export function resultsTable(runs: Run[] = listRuns()): ColumnTable {
  const rows = runs
    .filter((r) => r.status === "finished")
    .map((r) => ({ id: r.id, ...flatten(r.config, "config"), ...flatten(r.results() ?? {}) }));
  return aq().from(rows);
}

/** The metrics lines of a run (optionally only one kind: "train" or "eval"). */
export function metricsTable(run: Run, kind?: string): ColumnTable {
  const rows = run.metrics().filter((m) => !kind || m.kind === kind).map((m) => flatten(m));
  return aq().from(rows);
}
