// The lambda sweep of selective LoRA, from sweep rows: active share, target accuracy and
// retention per lambda (means over seeds), the run nearest 5% active against plain LoRA, which
// blocks stay open, the inference cost, and Paper B's claims computed from them.
import * as tf from "@tensorflow/tfjs";
import type { Figure, Trace } from "../../plotting/figure";
import { createViT } from "../../model/vit";
import { forwardMacs, modelForwardMacs } from "../../model/flops";
import { LoraAdapter } from "../../adapters/lora";
import { SelectiveLoraAdapter } from "../../adapters/selective";
import type { ExperimentConfig } from "../config";
import { vitConfig } from "../../model/config";
import { Check, Claim, Comparison, Rows, check, claim, f2, finished, val, versus } from "../rows";
import { Accuracy, groupRows, mean, round, std } from "../stats";
import type { SweepRow } from "../sweep";
import { Run, runsRoot } from "../../runs/store";
import { ALL_LINEARS } from "./recipe";

export interface LambdaRow {
  method: string;
  lambda: number | null;
  seeds: number;
  active_share: number;
  active_share_std: number;
  /** Best on test (the official code's selection): a checkpoint from before the penalty closed gates, often. */
  target_top1_best: number;
  target_top1_best_std: number;
  /** At the last step: the model whose gates active_share counts, so the one the claims compare. */
  target_top1_last: number;
  target_top1_last_std: number;
  retention_knn20: number;
  retention_knn20_std: number;
  retention_knn20_best: number;
  /** Images each seed's accuracy was scored on: the target test set, the retention queries (NaN when the runs predate recording them). */
  test_images: number;
  retention_queries: number;
  /** Forward MACs per image of the inference form (merged), unmerged, and of the base model. */
  macs: number;
  macs_unmerged: number;
  macs_base: number;
}

const pct = (rs: SweepRow[], k: string) => rs.map((r) => 100 * val(r, k));

/** One row per reference method and per lambda (percent; active share in percent of the blocks). */
export function lambdaTable(rows: Rows): LambdaRow[] {
  const groups = groupRows(finished(rows), ["method", "lambda"]);
  return groups
    .map(({ key, rows: rs }) => ({
      method: String(key.method), lambda: typeof key.lambda === "number" ? key.lambda : null, seeds: rs.length,
      active_share: round(mean(pct(rs, "active_share"))), active_share_std: round(std(pct(rs, "active_share"))),
      target_top1_best: round(mean(pct(rs, "target_top1_best"))), target_top1_best_std: round(std(pct(rs, "target_top1_best"))),
      target_top1_last: round(mean(pct(rs, "target_top1_last"))), target_top1_last_std: round(std(pct(rs, "target_top1_last"))),
      retention_knn20: round(mean(pct(rs, "retention_knn20"))), retention_knn20_std: round(std(pct(rs, "retention_knn20"))),
      retention_knn20_best: round(mean(pct(rs, "retention_knn20_best"))),
      test_images: mean(rs.map((r) => val(r, "test_images"))), retention_queries: mean(rs.map((r) => val(r, "retention_queries"))),
      macs: mean(rs.map((r) => val(r, "macs"))), macs_unmerged: mean(rs.map((r) => val(r, "macs_unmerged"))), macs_base: mean(rs.map((r) => val(r, "macs_base"))),
    }))
    .sort((a, b) => (a.lambda ?? -1) - (b.lambda ?? -1));
}

/** The rows lambda_sweep.csv holds: one per selective run (every seed). */
export function lambdaRuns(rows: Rows): SweepRow[] {
  return finished(rows)
    .filter((r) => r.family === "selective")
    .map((r) => ({
      lambda: r.lambda, seed: r.seed, active_share: val(r, "active_share"),
      // target_top1 is the last step's: the model whose gates active_share counts.
      target_top1: val(r, "target_top1_last"), target_top1_best: val(r, "target_top1_best"),
      retention_knn20: val(r, "retention_knn20"), retention_knn20_best: val(r, "retention_knn20_best"), macs: val(r, "macs"), macs_unmerged: val(r, "macs_unmerged"),
      macs_base: val(r, "macs_base"), active_sites: r.active_sites, id: r.id,
    }));
}

/**
 * The selective lambda whose mean active share is nearest `share` (a fraction), and the reference
 * rows. A lambda that closed every gate is not a candidate: with no block open the run is linear
 * probing (the head alone), which says nothing about how few blocks suffice.
 */
export function nearestShare(table: readonly LambdaRow[], share = 0.05): { selective?: LambdaRow; lora?: LambdaRow; all?: LambdaRow; linear?: LambdaRow } {
  const sel = table.filter((r) => r.lambda !== null && Number.isFinite(r.active_share) && r.active_share > 0);
  const selective = [...sel].sort((a, b) => Math.abs(a.active_share - 100 * share) - Math.abs(b.active_share - 100 * share) || (a.lambda ?? 0) - (b.lambda ?? 0))[0];
  const ref = (m: string) => table.find((r) => r.lambda === null && r.method.startsWith(m));
  return { selective, lora: ref("LoRA"), all: ref("All"), linear: ref("Linear") };
}

const COLORS = { sel: "#b279a2", lora: "#4c78a8", all: "#e45756", linear: "#888888" };

/** Active share against lambda (left); target accuracy and retention against active share (right). */
export function lambdaFigure(table: readonly LambdaRow[]): Figure {
  const sel = table.filter((r) => r.lambda !== null);
  // lambda = 0 is drawn at half the smallest positive lambda on the log axis.
  const positive = sel.map((r) => r.lambda as number).filter((l) => l > 0);
  const zeroAt = positive.length ? Math.min(...positive) / 2 : 0.01;
  const lx = (l: number) => (l === 0 ? zeroAt : l);
  const refs = table.filter((r) => r.lambda === null);
  const data: Trace[] = [
    {
      type: "scatter", mode: "lines+markers", name: "selective: active share", x: sel.map((r) => lx(r.lambda as number)), y: sel.map((r) => r.active_share),
      error_y: { type: "data", array: sel.map((r) => r.active_share_std), visible: true }, line: { color: COLORS.sel }, showlegend: false,
      text: sel.map((r) => `lambda ${r.lambda}`),
    },
    {
      type: "scatter", mode: "lines+markers", name: "selective: target top-1", xaxis: "x2", yaxis: "y2", x: sel.map((r) => r.active_share), y: sel.map((r) => r.target_top1_last),
      line: { color: COLORS.sel }, marker: { symbol: "circle", size: 8 }, text: sel.map((r) => `lambda ${r.lambda}`),
    },
    {
      type: "scatter", mode: "lines+markers", name: "selective: retention 20-NN", xaxis: "x2", yaxis: "y2", x: sel.map((r) => r.active_share), y: sel.map((r) => r.retention_knn20),
      line: { color: COLORS.sel, dash: "dot" }, marker: { symbol: "square", size: 8 }, text: sel.map((r) => `lambda ${r.lambda}`),
    },
  ];
  for (const r of refs) {
    // Linear probing opens no block (0%); full fine-tuning and plain LoRA train every one (100%).
    const linear = r.method === "Linear";
    const color = linear ? COLORS.linear : r.method === "All" ? COLORS.all : COLORS.lora;
    const x = [linear ? 0 : 100];
    data.push(
      { type: "scatter", mode: "markers", name: `${r.method}: target top-1`, xaxis: "x2", yaxis: "y2", x, y: [r.target_top1_last], marker: { color, symbol: "circle-open", size: 12, line: { width: 2 } } },
      { type: "scatter", mode: "markers", name: `${r.method}: retention`, xaxis: "x2", yaxis: "y2", x, y: [r.retention_knn20], marker: { color, symbol: "square-open", size: 12, line: { width: 2 } } },
    );
  }
  return {
    data,
    layout: {
      title: "Selective LoRA: the lambda sweep",
      xaxis: { domain: [0, 0.42], type: "log", title: `penalty lambda (log; 0 drawn at ${zeroAt})` },
      yaxis: { title: "active blocks (%)", range: [-5, 105] },
      xaxis2: { domain: [0.52, 1], title: "active blocks (%)", range: [-5, 105] },
      yaxis2: { anchor: "x2", title: "accuracy (%)" },
      legend: { orientation: "h", y: -0.25 },
      width: 980, height: 500,
    },
  };
}

/**
 * Which blocks stay open: mean final score (z) and the share of seeds with the gate open (text),
 * block x target layer, for the runs of one lambda.
 */
export function gateHeatmap(rows: Rows, lambda: number, opts: { root?: string; tau?: number } = {}): Figure {
  const root = opts.root ?? runsRoot();
  const runs = finished(rows).filter((r) => r.family === "selective" && r.lambda === lambda);
  const scores = new Map<string, number[]>();
  for (const r of runs) {
    const res = Run.load(String(r.id), root).results<{ adapter?: { scores?: Record<string, number> } }>();
    for (const [site, s] of Object.entries(res?.adapter?.scores ?? {})) scores.set(site, [...(scores.get(site) ?? []), s]);
  }
  const sites = [...scores.keys()];
  const blocks = [...new Set(sites.map((s) => Number(/^blocks\.(\d+)\./.exec(s)?.[1])))].sort((a, b) => a - b);
  const layer = (s: string) => s.split(".").at(-1) as string;
  const layers = ALL_LINEARS.filter((l) => sites.some((s) => layer(s) === l));
  const at = (b: number, l: string) => sites.find((s) => s.startsWith(`blocks.${b}.`) && layer(s) === l);
  const tau = opts.tau ?? 0.1;
  const z = blocks.map((b) => layers.map((l) => { const s = at(b, l); return s ? mean(scores.get(s)!) : null; }));
  const text = blocks.map((b) => layers.map((l) => {
    const s = at(b, l);
    if (!s) return "";
    const xs = scores.get(s)!;
    return `${xs.filter((x) => x >= tau).length}/${xs.length} open`;
  }));
  return {
    data: [{ type: "heatmap", x: [...layers], y: blocks.map((b) => `block ${b + 1}`), z, text, texttemplate: "%{text}<br>s=%{z:.3f}", colorscale: "Viridis", colorbar: { title: "score" }, zmid: tau }],
    layout: { title: `Open gates at lambda = ${lambda} (${runs.length} seed${runs.length === 1 ? "" : "s"}; open: s >= ${tau})`, xaxis: { title: "target layer" }, yaxis: { title: "block", autorange: "reversed" }, width: 720, height: 440 },
  };
}

/**
 * Forward MACs per image, counted on real models of the config's architecture: plain LoRA
 * unmerged at each rank, against the base model, which is what merged LoRA and selective LoRA's
 * inference form cost.
 */
export function macsByRank(config: ExperimentConfig, ranks: readonly number[], targets: readonly string[] = ALL_LINEARS): { rank: number; lora_unmerged: number; lora_merged: number; selective_inference: number; base: number }[] {
  const vit = vitConfig(config.model.preset ?? {}, config.model.vit ?? {});
  return ranks.map((rank) => {
    const m = createViT(vit, { seed: 0 });
    try {
      const base = forwardMacs(m.config).macs;
      const a = LoraAdapter.attach(m, { rank, targets });
      const lora_unmerged = modelForwardMacs(m).macs;
      a.mergeAndUnload();
      const lora_merged = modelForwardMacs(m).macs;
      const s = SelectiveLoraAdapter.attachSelective(m, { rank, targets });
      // Close half the gates, then take the inference form: open ones merged, closed ones dropped.
      s.layers.forEach((l, i) => tf.tidy(() => l.score.assign(tf.scalar(i % 2 === 0 ? 1 : 0))));
      s.mergeAndUnload(); // toInference's model, without reading back which gates it merged
      return { rank, lora_unmerged, lora_merged, selective_inference: modelForwardMacs(m).macs, base };
    } finally {
      m.dispose();
    }
  });
}

export function macsFigure(byRank: ReturnType<typeof macsByRank>, runs: readonly SweepRow[]): Figure {
  const sel = runs.filter((r) => r.family === "selective");
  return {
    data: [
      { type: "scatter", mode: "lines+markers", name: "LoRA, unmerged", x: byRank.map((r) => r.rank), y: byRank.map((r) => r.lora_unmerged / 1e6), line: { color: COLORS.lora } },
      { type: "scatter", mode: "lines+markers", name: "LoRA merged = selective LoRA (inference form)", x: byRank.map((r) => r.rank), y: byRank.map((r) => r.selective_inference / 1e6), line: { color: COLORS.sel } },
      { type: "scatter", mode: "lines", name: "base model", x: byRank.map((r) => r.rank), y: byRank.map((r) => r.base / 1e6), line: { color: "#888", dash: "dot" } },
      ...(sel.length ? [{ type: "scatter", mode: "markers", name: "trained selective runs (inference form)", x: sel.map((r) => val(r, "rank")), y: sel.map((r) => val(r, "macs") / 1e6), marker: { color: "#000", symbol: "x", size: 9 } } as Trace] : []),
    ],
    layout: { title: "Inference cost against LoRA rank", xaxis: { title: "rank", type: "log", tickvals: byRank.map((r) => r.rank) }, yaxis: { title: "forward MMACs per image" }, legend: { orientation: "h", y: -0.25 }, width: 760, height: 460 },
  };
}

const target = (r: LambdaRow): Accuracy => ({ mean: r.target_top1_last, std: r.target_top1_last_std, seeds: r.seeds, n: r.test_images });
const retention = (r: LambdaRow): Accuracy => ({ mean: r.retention_knn20, std: r.retention_knn20_std, seeds: r.seeds, n: r.retention_queries });

/**
 * Paper B's claims on the DINO path, computed from the sweep (the paper's numbers are CLIP's).
 * Each rests on a difference of accuracies, judged at two standard errors (test-set binomial
 * noise and the seeds' spread): "within noise" where this preset cannot tell.
 */
export function lambdaClaims(table: readonly LambdaRow[]): Claim[] {
  const { selective: s, lora, all, linear } = nearestShare(table);
  const out: Claim[] = [];
  const add = (text: string, paper: string, r: Comparison | undefined, note = "") => out.push(claim(text, paper, r ? `${r.ours}${note}` : "n/a", r?.holds));
  add(
    "About 5% of active blocks suffice: the run nearest 5% active (at least one block open) reaches plain LoRA's target accuracy (within 1 point)",
    "6.25% of blocks active on CLIP ViT-B/16 (\"as few as 5%\")",
    s && lora ? versus(target(s), target(lora), "LoRA", -1) : undefined,
    s ? `; lambda ${s.lambda}, ${f2(s.active_share)}% active, last step` : "",
  );
  add(
    "Selective LoRA forgets less than plain LoRA (retention of the run nearest 5% active)",
    "forgets 7.31% less (CLIP; plain LoRA loses 17.12%)",
    s && lora ? versus(retention(s), retention(lora), "LoRA") : undefined,
  );
  add(
    "Selective LoRA forgets less than full fine-tuning",
    "full fine-tuning (FLYP) loses 16.24% (CLIP)",
    s && all ? versus(retention(s), retention(all), "All") : undefined,
  );
  add(
    "The open blocks do the adapting: the run nearest 5% active beats linear probing (no block open) on the target",
    "(implied: selective LoRA's accuracy comes from its open blocks)",
    s && linear ? versus(target(s), target(linear), "Linear") : undefined,
    lora ? `; LoRA ${f2(lora.target_top1_last)}, last step` : "",
  );
  return out;
}

/** Relative logit difference up to which the inference form computes what the trained model does (float32 sums in another order). */
export const MERGE_TOLERANCE = 1e-4;

/**
 * Checks of the inference form, measured on every trained adapter model (LoRA and selective LoRA,
 * ViT or CLIP's image tower): what Paper B states as exact, so a failure is a defect here, not a
 * finding.
 */
export function inferenceChecks(rows: Rows): Check[] {
  const adapted = finished(rows).filter((r) => Number.isFinite(val(r, "macs")));
  const equal = adapted.filter((r) => val(r, "macs") === val(r, "macs_base")).length;
  const measured = adapted.filter((r) => Number.isFinite(val(r, "merge_max_abs_diff")));
  const worst = Math.max(...measured.map((r) => val(r, "merge_max_abs_diff") / val(r, "merge_max_abs_logit")));
  return [
    check(
      "The inference form (open blocks merged, closed ones dropped; plain LoRA merged) costs exactly the base model's MACs",
      adapted.length ? `${equal} of ${adapted.length} trained models (${f2(val(adapted[0], "macs_base") / 1e6)} M MACs per image)` : "n/a",
      adapted.length ? equal === adapted.length : undefined,
    ),
    check(
      `The inference form computes what the trained model does: largest |output difference| on the first test images (the head's logits; CLIP: image embeddings), relative to the largest |output|, at most ${MERGE_TOLERANCE}`,
      measured.length ? `largest ${worst.toExponential(1)} over ${measured.length} trained models` : "n/a (runs from before this was recorded)",
      measured.length ? worst <= MERGE_TOLERANCE : undefined,
    ),
  ];
}

/** The inference-form checks, and the unmerged cost against the rank on real models of the architecture. */
export function lambdaChecks(rows: Rows, byRank: ReturnType<typeof macsByRank>): Check[] {
  const out = inferenceChecks(rows);
  const grows = byRank.every((r, i) => r.lora_unmerged > r.base && (i === 0 || r.lora_unmerged > byRank[i - 1].lora_unmerged));
  out.push(check(
    "Unmerged LoRA costs more than the base model, growing with the rank (the reason to merge)",
    byRank.map((r) => `r=${r.rank}: +${(100 * (r.lora_unmerged / r.base - 1)).toFixed(1)}%`).join(", "),
    byRank.length ? grows : undefined,
  ));
  return out;
}
