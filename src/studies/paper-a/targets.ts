// Paper A's scatter over target domains: per target and method, target accuracy against
// retention; the paper's five targets beside ours, and the claims that hold on every target.
import type { Figure, Trace } from "../../plotting/figure";
import { Claim, ClaimBoth, Rows, claim, claimsBoth, finished, val, versus } from "../rows";
import { Accuracy, groupRows, mean, round, std } from "../stats";
import { SCATTER } from "./published";

export const scatterFamily = (m: string) => m.split(" ")[0];

export interface TargetRow {
  target: string;
  method: string;
  seeds: number;
  target_top1_best: number;
  target_top1_best_std: number;
  target_top1_last: number;
  target_top1_last_std: number;
  retention_knn20: number;
  retention_knn20_std: number;
  retention_knn20_best: number;
  retention_knn20_best_std: number;
  /** Images each seed was scored on: the target's test set, the retention queries (NaN for runs stored before they were recorded). */
  test_images: number;
  retention_queries: number;
}

/** One row per (target, method): means over seeds, percent. */
export function targetsTable(rows: Rows): TargetRow[] {
  return groupRows(finished(rows).filter((r) => r.method !== "Source model"), ["target", "method"]).map(({ key, rows: rs }) => {
    const p = (k: string) => rs.map((r) => 100 * val(r, k));
    return {
      target: String(key.target), method: String(key.method), seeds: rs.length,
      target_top1_best: round(mean(p("target_top1_best"))), target_top1_best_std: round(std(p("target_top1_best"))),
      target_top1_last: round(mean(p("target_top1_last"))), target_top1_last_std: round(std(p("target_top1_last"))),
      retention_knn20: round(mean(p("retention_knn20"))), retention_knn20_std: round(std(p("retention_knn20"))),
      retention_knn20_best: round(mean(p("retention_knn20_best"))), retention_knn20_best_std: round(std(p("retention_knn20_best"))),
      test_images: mean(rs.map((r) => val(r, "test_images"))), retention_queries: mean(rs.map((r) => val(r, "retention_queries"))),
    };
  });
}

const COLORS: Record<string, string> = { Block: "#b279a2", LoRA: "#4c78a8", All: "#e45756", Linear: "#54a24b" };
const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "x", "star"];

/** Target accuracy against retention, one marker per (target, method): paper (left), ours (right). */
export function targetsFigure(table: readonly TargetRow[], opts: { preset?: string } = {}): Figure {
  const data: Trace[] = [];
  const families = Object.keys(COLORS);
  const paperTargets = Object.keys(SCATTER);
  const ourTargets = [...new Set(table.map((r) => r.target))];
  for (const f of families) {
    const ps = paperTargets.map((t, i) => ({ t, i, v: SCATTER[t][f] }));
    data.push({
      type: "scatter", mode: "markers", name: f, legendgroup: f, x: ps.map((p) => p.v.retention), y: ps.map((p) => p.v.target),
      text: ps.map((p) => p.t), marker: { color: COLORS[f], size: 10, symbol: ps.map((p) => SYMBOLS[p.i % SYMBOLS.length]) },
      hovertemplate: "%{text}: %{y:.2f} / %{x:.1f}",
    });
    const ours = table.filter((r) => scatterFamily(r.method) === f);
    data.push({
      type: "scatter", mode: "markers", name: f, legendgroup: f, showlegend: false, xaxis: "x2", yaxis: "y2",
      x: ours.map((r) => r.retention_knn20_best), y: ours.map((r) => r.target_top1_best), text: ours.map((r) => `${r.target} (${r.method})`),
      marker: { color: COLORS[f], size: 10, symbol: ours.map((r) => SYMBOLS[ourTargets.indexOf(r.target) % SYMBOLS.length]) },
      error_x: { type: "data", array: ours.map((r) => r.retention_knn20_best_std), visible: true, thickness: 1 },
      error_y: { type: "data", array: ours.map((r) => r.target_top1_best_std), visible: true, thickness: 1 },
      hovertemplate: "%{text}: %{y:.2f} / %{x:.2f}",
    });
  }
  const legendOf = (ts: string[]) => ts.map((t, i) => `${["●", "■", "◆", "▲", "✚", "✖", "★"][i % 7]} ${t}`).join("  ");
  return {
    data,
    layout: {
      title: "Target accuracy against retention, per target domain",
      xaxis: { domain: [0, 0.46], title: "ImageNet-1k 20-NN (%)" },
      yaxis: { title: "target top-1 (%)" },
      xaxis2: { domain: [0.54, 1], title: "source-domain 20-NN (%)" },
      yaxis2: { anchor: "x2", title: "target top-1 (%)" },
      annotations: [
        { text: `paper (DINO ViT-B/16): ${legendOf(paperTargets)}`, xref: "paper", yref: "paper", x: 0, y: 1.06, showarrow: false, xanchor: "left", yanchor: "bottom", font: { size: 11 } },
        { text: `ours (${opts.preset ?? "laptop"}): ${legendOf(ourTargets)}`, xref: "paper", yref: "paper", x: 0.54, y: 1.06, showarrow: false, xanchor: "left", yanchor: "bottom", font: { size: 11 } },
      ],
      legend: { orientation: "h", y: -0.2 },
      // Room above the plots for the title and, below it, each panel's marker key.
      margin: { l: 72, r: 40, t: 110, b: 60 },
      width: 980, height: 530,
    },
  };
}

/**
 * Claims of the scatter that the paper shows on all five targets, checked on each of ours. Each
 * rests on a difference of two accuracies, judged at two standard errors (the test set's binomial
 * noise and the seeds' spread): "within noise" where this preset cannot tell. The best-on-test
 * reading is a maximum over evaluations, so its noise is larger than the error says.
 */
export function targetsClaims(table: readonly TargetRow[], which: "best" | "last" = "best"): Claim[] {
  const best = which === "best";
  const ret = (r: TargetRow): Accuracy => ({
    mean: best ? r.retention_knn20_best : r.retention_knn20, std: best ? r.retention_knn20_best_std : r.retention_knn20_std, seeds: r.seeds, n: r.retention_queries,
  });
  const acc = (r: TargetRow): Accuracy => ({
    mean: best ? r.target_top1_best : r.target_top1_last, std: best ? r.target_top1_best_std : r.target_top1_last_std, seeds: r.seeds, n: r.test_images,
  });
  const targets = [...new Set(table.map((r) => r.target))];
  const get = (t: string, f: string) => table.find((r) => r.target === t && scatterFamily(r.method) === f);
  const all5 = (f: (v: Record<string, { target: number; retention: number }>) => boolean) => `${Object.values(SCATTER).filter(f).length} of ${Object.keys(SCATTER).length} targets`;
  const out: Claim[] = [];
  const each = (text: string, paper: string, a: string, b: string, measure: (r: TargetRow) => Accuracy) => {
    for (const t of targets) {
      const ra = get(t, a), rb = get(t, b);
      const c = ra && rb ? versus(measure(ra), measure(rb), b) : undefined;
      out.push(claim(`${text}: ${t}`, paper, c?.ours ?? "n/a", c?.holds));
    }
  };
  each("Block expansion retains more than full fine-tuning", `yes on ${all5((v) => v.Block.retention > v.All.retention)}`, "Block", "All", ret);
  each("Block expansion retains more than LoRA", `yes on ${all5((v) => v.Block.retention > v.LoRA.retention)}`, "Block", "LoRA", ret);
  // "At least" is judged as "more than": a tie is within noise, whichever side of it the means fall.
  each("Block expansion's target accuracy is at least full fine-tuning's", `yes on ${all5((v) => v.Block.target >= v.All.target)}`, "Block", "All", acc);
  each("Full fine-tuning beats the linear probe on the target", `yes on ${all5((v) => v.All.target > v.Linear.target)}`, "All", "Linear", acc);
  return out;
}

/** The claims on the best-on-test checkpoint and on the last one, side by side. */
export function targetsClaimsBoth(table: readonly TargetRow[]): ClaimBoth[] {
  return claimsBoth(targetsClaims(table, "best"), targetsClaims(table, "last"));
}
