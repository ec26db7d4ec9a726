// The headline of Paper A as a curve: source-domain retention after 0, 1, 2, 5, 10, 20, 50, ...
// iterations, for full fine-tuning under both readings of the protocol (the Table-1 recipe with
// its warm-up, and a constant learning rate without warm-up), with LoRA, block expansion and
// linear beside it; and its claims, computed from the curve.
import { CurvePoint, CurveRow, curveStats } from "../forgetting";
import { Claim, claim } from "../rows";
import { round } from "../stats";
import { HEADLINE } from "./published";

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

/** Relative loss of retention at `step` against step 0: (r0 - r_step) / r0. */
function relativeLoss(points: readonly CurvePoint[], group: string, step: number): { r0: number; r: number; loss: number } | undefined {
  const at = (s: number) => points.find((p) => p.group === group && p.step === s)?.mean;
  const r0 = at(0), r = at(step);
  if (r0 === undefined || r === undefined) return undefined;
  return { r0: 100 * r0, r: 100 * r, loss: (r0 - r) / r0 };
}

/** The headline claim under each reading, and the ordering at the last step. */
export function curveClaims(curve: readonly CurveRow[]): Claim[] {
  const rows = curveGroups(curve);
  const points = curveStats(rows, ["curve"]);
  const groups = [...new Set(points.map((p) => p.group))];
  const out: Claim[] = [];
  for (const g of groups.filter((x) => x.startsWith("All"))) {
    const l = relativeLoss(points, g, HEADLINE.iterations);
    out.push(claim(
      `Full fine-tuning loses over ${100 * HEADLINE.relativeLoss}% of its source k-NN accuracy after ${HEADLINE.iterations} iterations: ${g}`,
      "over 70% (IN-1k 20-NN, reading not published)",
      l ? `${l.r0.toFixed(2)} -> ${l.r.toFixed(2)}: ${(100 * l.loss).toFixed(1)}% lost` : "not measured at that step",
      l ? l.loss > HEADLINE.relativeLoss : undefined,
    ));
  }
  const last = Math.max(...points.map((p) => p.step));
  const at = (g: string) => points.find((p) => p.group === g && p.step === last)?.mean;
  const all = groups.find((g) => g.startsWith("All") && !g.includes("constant")) ?? groups.find((g) => g.startsWith("All"));
  for (const g of groups.filter((x) => x.startsWith("LoRA") || x.startsWith("Block"))) {
    const a = all ? at(all) : undefined, b = at(g);
    out.push(claim(
      `${g} forgets less than full fine-tuning (retention after ${last} iterations)`,
      g.startsWith("LoRA") ? "LoRA 65.06-66.82 vs All 25.24 (Table 1)" : "Block 72.28-75.75 vs All 25.24 (Table 1)",
      a !== undefined && b !== undefined ? `${(100 * b).toFixed(2)} vs ${all} ${(100 * a).toFixed(2)}` : "n/a",
      a !== undefined && b !== undefined ? b > a : undefined,
    ));
  }
  const lin = groups.find((g) => g.startsWith("Linear"));
  if (lin) {
    const ps = points.filter((p) => p.group === lin);
    const spread = Math.max(...ps.map((p) => p.mean)) - Math.min(...ps.map((p) => p.mean));
    out.push(claim("Linear probing does not forget: its curve is flat (frozen backbone)", "76.11 vs 76.1", `max - min over the curve: ${(100 * spread).toFixed(4)} points`, 100 * spread <= 0.01));
  }
  return out;
}
