// The headline of Paper A as a curve: source-domain retention after 0, 1, 2, 5, 10, 20, 50, ...
// iterations, for full fine-tuning under both readings of the protocol (the Table-1 recipe with
// its warm-up, and a constant learning rate without warm-up), with LoRA, block expansion and
// linear beside it; and its claims, computed from the curve.
import { CurvePoint, CurveRow, curveStats } from "../forgetting";
import { Check, Claim, UNJUDGED, check, claim, f2, versus } from "../rows";
import { Accuracy, exact, exceeds, mean, relativeLoss, round } from "../stats";
import { HEADLINE } from "./published";
import { FROZEN_TOLERANCE } from "./table1";

/** The curve's groups: "All (constant)", "LoRA r=8", ...: the method, and the schedule where it varies. */
export function curveGroups(curve: readonly CurveRow[]): CurveRow[] {
  const schedules = new Map<string, Set<string>>();
  for (const r of curve) {
    const m = String(r.method);
    if (!schedules.has(m)) schedules.set(m, new Set());
    schedules.get(m)!.add(String(r.schedule));
  }
  return curve.map((r) => ({ ...r, curve: schedules.get(String(r.method))!.size > 1 ? `${r.method} (${r.schedule})` : String(r.method) }));
}

/** Mean and spread per curve and step (percent), as a table. */
export function curveTable(points: readonly CurvePoint[]): Record<string, string | number>[] {
  return points.map((p) => ({ curve: p.group, step: p.step, retention_knn20: round(100 * p.mean), retention_knn20_std: round(100 * p.std), seeds: p.n }));
}

/** A curve's retention at `step` (percent) with its noise: the seeds' mean and spread, the queries scored. */
function at(points: readonly CurvePoint[], group: string, step: number, queries: number): Accuracy | undefined {
  const p = points.find((x) => x.group === group && x.step === step);
  return p && { mean: 100 * p.mean, std: 100 * p.std, seeds: p.n, n: queries };
}

/**
 * The headline claim under each reading, and the ordering at the last step. Each is judged at two
 * standard errors (the queries' binomial noise and the seeds' spread), as in 02-04: "within
 * noise" where this preset cannot tell.
 */
export function curveClaims(curve: readonly CurveRow[]): Claim[] {
  const rows = curveGroups(curve);
  const points = curveStats(rows, ["curve"]);
  const groups = [...new Set(points.map((p) => p.group))];
  // Images each retention point was scored on (NaN for runs stored before they were recorded).
  const queries = (g: string) => mean(rows.filter((r) => r.curve === g).map((r) => (typeof r.retention_queries === "number" ? r.retention_queries : NaN)));
  const out: Claim[] = [];
  for (const g of groups.filter((x) => x.startsWith("All"))) {
    const r0 = at(points, g, 0, queries(g)), r = at(points, g, HEADLINE.iterations, queries(g));
    const loss = r0 && r ? relativeLoss(r0, r) : undefined;
    const judged = loss && Number.isFinite(loss.se);
    out.push(claim(
      `Full fine-tuning loses over ${100 * HEADLINE.relativeLoss}% of its source k-NN accuracy after ${HEADLINE.iterations} iterations: ${g}`,
      "over 70% (IN-1k 20-NN, reading not published)",
      r0 && r && loss ? `${f2(r0.mean)} -> ${f2(r.mean, r.std)}: ${loss.mean.toFixed(1)}%${judged ? ` ± ${(2 * loss.se).toFixed(1)}% (2 SE)` : ""} lost${judged ? "" : ` ${UNJUDGED}`}` : "not measured at that step",
      loss && judged ? exceeds(loss, exact(100 * HEADLINE.relativeLoss)) : undefined,
    ));
  }
  const last = Math.max(...points.map((p) => p.step));
  const all = groups.find((g) => g.startsWith("All") && !g.includes("constant")) ?? groups.find((g) => g.startsWith("All"));
  for (const g of groups.filter((x) => x.startsWith("LoRA") || x.startsWith("Block"))) {
    const a = all ? at(points, all, last, queries(all)) : undefined, b = at(points, g, last, queries(g));
    const c = a && b && all ? versus(b, a, all) : undefined;
    out.push(claim(
      `${g} forgets less than full fine-tuning (retention after ${last} iterations)`,
      g.startsWith("LoRA") ? "LoRA 65.06-66.82 vs All 25.24 (Table 1)" : "Block 72.28-75.75 vs All 25.24 (Table 1)",
      c?.ours ?? "n/a",
      c?.holds,
    ));
  }
  return out;
}

/** What the curve must show by construction: the linear probe's frozen backbone keeps its retention at every step. */
export function curveChecks(curve: readonly CurveRow[]): Check[] {
  const points = curveStats(curveGroups(curve), ["curve"]);
  const lin = [...new Set(points.map((p) => p.group))].find((g) => g.startsWith("Linear"));
  const ps = points.filter((p) => p.group === lin);
  const spread = ps.length ? 100 * (Math.max(...ps.map((p) => p.mean)) - Math.min(...ps.map((p) => p.mean))) : NaN;
  return [check(
    `The linear probe's curve is flat (frozen backbone), to within ${FROZEN_TOLERANCE} points`,
    ps.length ? `max - min over ${ps.length} steps: ${spread.toFixed(4)} points` : "n/a",
    ps.length ? spread <= FROZEN_TOLERANCE : undefined,
  )];
}
