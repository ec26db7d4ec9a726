// Rows of a sweep as plain objects, from an arquero table or an array, and the claims-table shape
// every study notebook ends with.
import type { ColumnTable } from "arquero";
import { toTable } from "../plotting/table";
import type { StudyConfig } from "./clip/config";
import { Measured, Verdict, differenceSe, exceeds } from "./stats";

/** Labels of a variant that go into its rows (method, schedule, target, ...), not into the config. */
export type Tags = Record<string, string | number>;

/** One run of a sweep: its validated config, its tags, its run id. */
export interface SweepEntry<C extends StudyConfig = StudyConfig> {
  config: C;
  tags: Tags;
  id: string;
}

/** One row per run of a sweep: its tags, the config fields a table needs, and its results. */
export type SweepRow = Record<string, string | number | null>;

export type Rows = ColumnTable | readonly SweepRow[];

/** An arquero table of rows whose keys differ (the union of keys; absent values are null). */
export const rowsTable = (rows: readonly object[]): ColumnTable => toTable(rows);

export function rowsOf(t: Rows): SweepRow[] {
  return Array.isArray(t) ? [...t] : ((t as ColumnTable).objects() as SweepRow[]);
}

/** The finished rows (trained or reused), failed ones left out. */
export function finished(t: Rows): SweepRow[] {
  return rowsOf(t).filter((r) => r.status !== "failed");
}

/** A number of a row, NaN when absent (failed runs, metrics not measured). */
export function val(r: SweepRow, key: string): number {
  const v = r[key];
  return typeof v === "number" ? v : NaN;
}

/**
 * One claim of a paper: its wording, the paper's number, ours at this preset, and whether it holds
 * here ("within noise": the difference it rests on is inside two standard errors).
 */
export interface Claim {
  claim: string;
  paper: string;
  ours: string;
  holds: "yes" | "no" | "within noise" | "not measured";
}

export function claim(text: string, paper: string, ours: string, holds: Verdict | undefined): Claim {
  return { claim: text, paper, ours, holds: holds === undefined ? "not measured" : holds === "within noise" ? holds : holds ? "yes" : "no" };
}

/**
 * One check of the implementation that a run measures (e.g. merged weights compute what the
 * gated model does): not a claim of the paper, so not counted with the claims. A check that fails
 * is a defect to fix, not a finding.
 */
export interface Check {
  check: string;
  measured: string;
  passes: "yes" | "no" | "not measured";
}

export function check(text: string, measured: string, passes: boolean | undefined): Check {
  return { check: text, measured, passes: passes === undefined ? "not measured" : passes ? "yes" : "no" };
}

/** What a claim's comparison found: the text of `ours` and the verdict (undefined: not judged). */
export interface Comparison {
  ours: string;
  holds: Verdict | undefined;
}

/** A value of a claims table: two decimals, "± spread" when there is one (several seeds), "n/a" when not measured. */
export function f2(x: number | undefined, spread?: number): string {
  return x === undefined || !Number.isFinite(x) ? "n/a" : `${x.toFixed(2)}${spread ? ` ± ${spread.toFixed(2)}` : ""}`;
}

/** What a claim says in place of a verdict when its runs were stored before their image counts were recorded. */
export const UNJUDGED = "(image counts not recorded: noise not judged)";

/**
 * `a` against `b` (percent): "a vs <name> b: +d ± e (2 SE)", and whether a exceeds b by more than
 * `margin` points at two standard errors of the difference. Runs stored before their image
 * counts were recorded cannot be judged: the text says so and the claim is "not measured".
 */
export function versus(a: Measured, b: Measured, bName: string, margin = 0): Comparison {
  const se2 = 2 * differenceSe(a, b);
  const d = a.mean - b.mean;
  const head = `${f2(a.mean, a.std)} vs ${bName} ${f2(b.mean, b.std)}: ${d >= 0 ? "+" : ""}${d.toFixed(2)}`;
  if (!Number.isFinite(se2)) return { ours: `${head} ${UNJUDGED}`, holds: undefined };
  return { ours: `${head} ± ${se2.toFixed(2)} (2 SE)`, holds: exceeds(a, b, margin) };
}

/** A claim checked twice: on the best-on-test checkpoint (the official selection) and the last. */
export interface ClaimBoth {
  claim: string;
  paper: string;
  ours_best: string;
  holds_best: Claim["holds"];
  ours_last: string;
  holds_last: Claim["holds"];
}

export function claimsBoth(best: readonly Claim[], last: readonly Claim[]): ClaimBoth[] {
  return best.map((c, i) => ({ claim: c.claim, paper: c.paper, ours_best: c.ours, holds_best: c.holds, ours_last: last[i].ours, holds_last: last[i].holds }));
}
