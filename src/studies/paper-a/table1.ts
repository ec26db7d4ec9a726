// Table 1 from sweep rows: per method the exact trainable count, target top-1 (best on test, as
// the official code selects, and last), retention 20-NN (last, and at the best checkpoint), their
// means, over seeds with spreads, the paper's numbers beside ours; its figure and its claims.
import type { Figure, Trace } from "../../plotting/figure";
import { Claim, ClaimBoth, Rows, claim, claimsBoth, f2, finished, val } from "../rows";
import { groupRows, mean, round, std } from "../stats";
import { SOURCE_RETENTION, TABLE1 } from "./published";
import { METHODS } from "./recipe";

export interface Table1Row {
  method: string;
  trainable: number;
  seeds: number;
  target_top1_best: number;
  target_top1_best_std: number;
  target_top1_last: number;
  target_top1_last_std: number;
  retention_knn20: number;
  retention_knn20_std: number;
  retention_knn20_best: number;
  retention_knn20_best_std: number;
  /** (target_top1_best + retention_knn20_best) / 2: both from the best-on-test checkpoint, as the paper. */
  mean: number;
  mean_std: number;
  /** (target_top1_last + retention_knn20) / 2: no selection on the test split. */
  mean_last: number;
  mean_last_std: number;
  paper_trainable: string;
  paper_target: number;
  paper_retention: number;
  paper_mean: number;
}

const pct = (xs: number[]) => xs.map((x) => 100 * x);
const stat = (xs: number[]) => ({ m: round(mean(xs)), s: round(std(xs)) });

/** One row per method (Table 1's order), means and sample spreads over the seeds that finished. */
export function table1(rows: Rows): Table1Row[] {
  const done = finished(rows).filter((r) => r.method !== "Source model");
  const order = (m: unknown) => { const i = METHODS.findIndex((x) => x.method === m); return i < 0 ? METHODS.length : i; };
  return groupRows(done, ["method"])
    .sort((a, b) => order(a.key.method) - order(b.key.method))
    .map(({ key, rows: rs }) => {
      const tb = pct(rs.map((r) => val(r, "target_top1_best")));
      const tl = pct(rs.map((r) => val(r, "target_top1_last")));
      const rl = pct(rs.map((r) => val(r, "retention_knn20")));
      const rb = pct(rs.map((r) => val(r, "retention_knn20_best")));
      const m = stat(tb.map((t, i) => (t + rb[i]) / 2));
      const ml = stat(tl.map((t, i) => (t + rl[i]) / 2));
      const paper = TABLE1.find((p) => p.method === key.method);
      const [a, b, c, d] = [stat(tb), stat(tl), stat(rl), stat(rb)];
      return {
        method: String(key.method), trainable: val(rs[0], "trainable"), seeds: rs.length,
        target_top1_best: a.m, target_top1_best_std: a.s, target_top1_last: b.m, target_top1_last_std: b.s,
        retention_knn20: c.m, retention_knn20_std: c.s, retention_knn20_best: d.m, retention_knn20_best_std: d.s,
        mean: m.m, mean_std: m.s, mean_last: ml.m, mean_last_std: ml.s,
        paper_trainable: paper?.trainable ?? "", paper_target: paper?.target ?? NaN, paper_retention: paper?.retention ?? NaN, paper_mean: paper?.mean ?? NaN,
      };
    });
}

/** Retention of the untouched source model (percent), from the 0-step run among the rows. */
export function sourceRetention(rows: Rows): number {
  const r = finished(rows).find((x) => x.method === "Source model");
  return r ? round(100 * val(r, "retention_knn20"), 4) : NaN;
}

const FAMILY_COLORS: Record<string, string> = { All: "#e45756", Top: "#f58518", Linear: "#54a24b", LoRA: "#4c78a8", Block: "#b279a2" };
const family = (m: string) => Object.keys(FAMILY_COLORS).find((f) => m.startsWith(f)) ?? "All";

/** Target accuracy against retention per method: the paper's Table 1 (left) and ours (right). */
export function table1Figure(summary: readonly Table1Row[], opts: { source?: number; preset?: string } = {}): Figure {
  const panel = (pts: { method: string; x: number; y: number }[], axis: "" | "2"): Trace[] =>
    Object.keys(FAMILY_COLORS).map((f) => {
      const ps = pts.filter((p) => family(p.method) === f);
      return {
        type: "scatter", mode: "markers+text", name: f, legendgroup: f, showlegend: axis === "", xaxis: `x${axis}`, yaxis: `y${axis}`,
        x: ps.map((p) => p.x), y: ps.map((p) => p.y), text: ps.map((p) => p.method), textposition: "top center",
        marker: { color: FAMILY_COLORS[f], size: 9 }, textfont: { size: 10 },
      };
    });
  const ours = summary.map((r) => ({ method: r.method, x: r.retention_knn20_best, y: r.target_top1_best }));
  const paper = TABLE1.map((r) => ({ method: r.method, x: r.retention, y: r.target }));
  return {
    data: [...panel(paper, ""), ...panel(ours, "2")],
    layout: {
      title: "Table 1: target accuracy against retention",
      xaxis: { domain: [0, 0.46], title: "ImageNet-1k 20-NN (%)" },
      yaxis: { title: "CIFAR-100 top-1 (%)" },
      xaxis2: { domain: [0.54, 1], title: "source-domain 20-NN (%)" },
      yaxis2: { anchor: "x2", title: "target top-1 (%)" },
      annotations: [
        { text: `paper: DINO ViT-B/16, CIFAR-100 (anchor ${SOURCE_RETENTION})`, xref: "paper", yref: "paper", x: 0.0, y: 1.08, showarrow: false, xanchor: "left" },
        { text: `ours (${opts.preset ?? "laptop"})${opts.source !== undefined && Number.isFinite(opts.source) ? `: source model ${opts.source.toFixed(2)}` : ""}`, xref: "paper", yref: "paper", x: 0.54, y: 1.08, showarrow: false, xanchor: "left" },
      ],
      legend: { orientation: "h", y: -0.2 },
      width: 980, height: 480,
    },
  };
}

export type Selection = "best" | "last";


/** The numbers a claim reads: from the best-on-test checkpoint (the paper's) or the last one. */
interface Selected { method: string; target: number; targetStd: number; retention: number; retentionStd: number; mean: number; meanStd: number; lastRetention: number }

function select(r: Table1Row, which: Selection): Selected {
  return which === "best"
    ? { method: r.method, target: r.target_top1_best, targetStd: r.target_top1_best_std, retention: r.retention_knn20_best, retentionStd: r.retention_knn20_best_std, mean: r.mean, meanStd: r.mean_std, lastRetention: r.retention_knn20 }
    : { method: r.method, target: r.target_top1_last, targetStd: r.target_top1_last_std, retention: r.retention_knn20, retentionStd: r.retention_knn20_std, mean: r.mean_last, meanStd: r.mean_last_std, lastRetention: r.retention_knn20 };
}

/**
 * Table 1's claims, checked on our summary (means over seeds; ± is the sample spread), reading
 * either the best-on-test checkpoint (the official selection) or the last one.
 */
export function table1Claims(table: readonly Table1Row[], source: number, which: Selection = "best"): Claim[] {
  const summary = table.map((r) => select(r, which));
  const by = new Map(summary.map((r) => [r.method, r]));
  const paper = new Map(TABLE1.map((r) => [r.method, r]));
  const rows = (prefix: string) => summary.filter((r) => r.method.startsWith(prefix));
  const has = (...ms: string[]) => ms.every((m) => by.has(m));
  const out: Claim[] = [];

  const all = by.get("All");
  const others = summary.filter((r) => r.method !== "All");
  const nextLowest = [...others].sort((a, b) => a.retention - b.retention)[0];
  out.push(claim(
    "Full fine-tuning forgets the most: All has the lowest retention of the rows",
    `All ${paper.get("All")!.retention} (next lowest: LoRA r=16 65.06)`,
    all && nextLowest ? `All ${f2(all.retention, all.retentionStd)} (next lowest: ${nextLowest.method} ${f2(nextLowest.retention, nextLowest.retentionStd)})` : "n/a",
    all && nextLowest ? others.every((r) => r.retention > all.retention) : undefined,
  ));

  const lin = by.get("Linear");
  out.push(claim(
    "Linear probing keeps the source model's retention (frozen backbone), to within 0.01 points",
    `Linear ${paper.get("Linear")!.retention} vs the untouched model's ${SOURCE_RETENTION}`,
    lin ? `Linear ${lin.lastRetention.toFixed(2)} vs source model ${f2(source)} (difference ${(lin.lastRetention - source).toFixed(4)})` : "n/a",
    lin && Number.isFinite(source) ? Math.abs(lin.lastRetention - source) <= 0.01 : undefined,
  ));

  const blocks = rows("Block"), loras = rows("LoRA");
  const minBlock = Math.min(...blocks.map((r) => r.retention)), maxLora = Math.max(...loras.map((r) => r.retention));
  out.push(claim(
    "Block expansion forgets less than LoRA: every Block row retains more than every LoRA row",
    "Block 72.28-75.75 vs LoRA 65.06-66.82",
    blocks.length && loras.length ? `Block ${f2(minBlock)}-${f2(Math.max(...blocks.map((r) => r.retention)))} vs LoRA ${f2(Math.min(...loras.map((r) => r.retention)))}-${f2(maxLora)}` : "n/a",
    blocks.length && loras.length ? minBlock > maxLora : undefined,
  ));

  const bestBlock = [...blocks].sort((a, b) => b.target - a.target)[0];
  out.push(claim(
    "Block expansion reaches full fine-tuning's target accuracy: the best Block row >= All",
    "Block p=4 89.09 (p=3 88.58) vs All 88.13",
    bestBlock && all ? `${bestBlock.method} ${f2(bestBlock.target, bestBlock.targetStd)} vs All ${f2(all.target, all.targetStd)}` : "n/a",
    bestBlock && all ? bestBlock.target >= all.target : undefined,
  ));

  const bestLora = [...loras].sort((a, b) => b.target - a.target)[0];
  out.push(claim(
    "LoRA reaches full fine-tuning's target accuracy, to within 1 point",
    "LoRA r=8 88.27 vs All 88.13",
    bestLora && all ? `${bestLora.method} ${f2(bestLora.target, bestLora.targetStd)} vs All ${f2(all.target, all.targetStd)}` : "n/a",
    bestLora && all ? bestLora.target >= all.target - 1 : undefined,
  ));

  const bestMean = [...summary].sort((a, b) => b.mean - a.mean)[0];
  out.push(claim(
    "The best trade-off (mean of target and retention) is a block-expansion row",
    "Block p=3, mean 81.60",
    bestMean ? `${bestMean.method}, mean ${f2(bestMean.mean, bestMean.meanStd)}` : "n/a",
    bestMean ? bestMean.method.startsWith("Block") : undefined,
  ));

  const p1 = by.get("Block p=1"), p4 = by.get("Block p=4");
  out.push(claim(
    "More inserted blocks: p=4 has higher target accuracy and lower retention than p=1",
    "target 82.72 -> 89.09, retention 75.75 -> 72.28",
    p1 && p4 ? `target ${f2(p1.target)} -> ${f2(p4.target)}, retention ${f2(p1.retention)} -> ${f2(p4.retention)}` : "n/a",
    p1 && p4 ? p4.target > p1.target && p4.retention < p1.retention : undefined,
  ));

  const r = ["LoRA r=4", "LoRA r=8", "LoRA r=16"].map((m) => by.get(m));
  out.push(claim(
    "A higher LoRA rank forgets more: retention r=4 > r=8 > r=16",
    "66.82 > 65.99 > 65.06",
    has("LoRA r=4", "LoRA r=8", "LoRA r=16") ? r.map((x) => f2(x!.retention)).join(" / ") : "n/a",
    has("LoRA r=4", "LoRA r=8", "LoRA r=16") ? r[0]!.retention > r[1]!.retention && r[1]!.retention > r[2]!.retention : undefined,
  ));
  return out;
}

/** The claims read on the best-on-test checkpoint and on the last one, side by side. */
export function table1ClaimsBoth(table: readonly Table1Row[], source: number): ClaimBoth[] {
  return claimsBoth(table1Claims(table, source, "best"), table1Claims(table, source, "last"));
}
