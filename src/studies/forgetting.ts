// The forgetting curve: retention (source-domain k-NN) against fine-tuning iterations, read from
// the runs' metrics (each run measured it in-process at its retention steps). Rows are
// `{...tags, seed, step, retention_knn20, ...}`; the figure shows mean and spread over seeds per
// group on a log x axis (step 0, the untouched model, is drawn at x = 0.5).
import type { Figure, Trace } from "../plotting/figure";
import { Run, runsRoot } from "../runs/store";
import { groupRows, mean, std } from "./stats";
import { Rows, rowsOf } from "./rows";

export type CurveRow = Record<string, string | number | null>;

const TAG_FIELDS_SKIP = new Set(["status", "error", "describe"]);

/** One row per (run, retention step) of the finished runs among `rows`. */
export function curveRows(rows: Rows, opts: { root?: string; keep?: string[] } = {}): CurveRow[] {
  const root = opts.root ?? runsRoot();
  const keep = opts.keep ?? ["method", "schedule", "target", "seed", "lr", "retention_queries"];
  const out: CurveRow[] = [];
  for (const r of rowsOf(rows)) {
    if (r.status === "failed" || typeof r.id !== "string") continue;
    const labels = Object.fromEntries(keep.filter((k) => k in r && !TAG_FIELDS_SKIP.has(k)).map((k) => [k, r[k]]));
    for (const m of Run.load(r.id, root).metrics()) {
      if (m.kind !== "eval" || typeof m.step !== "number") continue;
      const scores = Object.entries(m).filter(([k, v]) => k.startsWith("retention_") && typeof v === "number");
      if (scores.length === 0) continue;
      out.push({ ...labels, step: m.step, ...Object.fromEntries(scores as [string, number][]) });
    }
  }
  return out;
}

export interface CurvePoint {
  group: string;
  step: number;
  mean: number;
  std: number;
  n: number;
}

/** Mean and spread over seeds per group (the joined values of `by`) and step. */
export function curveStats(curve: readonly CurveRow[], by: readonly string[], metric = "retention_knn20"): CurvePoint[] {
  const out: CurvePoint[] = [];
  for (const g of groupRows(curve, [...by, "step"])) {
    const xs = g.rows.map((r) => r[metric]).filter((v): v is number => typeof v === "number");
    out.push({ group: by.map((k) => String(g.key[k])).join(", "), step: Number(g.key.step), mean: mean(xs), std: std(xs), n: xs.length });
  }
  return out;
}

/** Retention (percent) against iterations, one line per group with a band of +-1 std over seeds. */
export function curveFigure(points: readonly CurvePoint[], opts: { title?: string; metricLabel?: string; reference?: { y: number; label: string } } = {}): Figure {
  const groups = [...new Set(points.map((p) => p.group))];
  const x = (s: number) => (s === 0 ? 0.5 : s);
  const data: Trace[] = [];
  const palette = ["#4c78a8", "#e45756", "#54a24b", "#f58518", "#b279a2", "#72b7b2", "#9d755d", "#bab0ac"];
  groups.forEach((g, i) => {
    const ps = points.filter((p) => p.group === g).sort((a, b) => a.step - b.step);
    const color = palette[i % palette.length];
    data.push({
      type: "scatter", mode: "lines+markers", name: g, x: ps.map((p) => x(p.step)), y: ps.map((p) => 100 * p.mean),
      line: { color }, marker: { color, size: 6 },
      error_y: { type: "data", array: ps.map((p) => 100 * p.std), visible: ps.some((p) => p.n > 1), color, thickness: 1 },
    });
  });
  const steps = [...new Set(points.map((p) => p.step))].sort((a, b) => a - b);
  if (opts.reference) {
    data.push({
      type: "scatter", mode: "lines", name: opts.reference.label, x: [x(steps[0] ?? 0), x(steps.at(-1) ?? 1)], y: [opts.reference.y, opts.reference.y],
      line: { color: "#888", dash: "dot" },
    });
  }
  return {
    data,
    layout: {
      title: opts.title ?? "Forgetting curve",
      xaxis: { title: "fine-tuning iterations (log; 0 = the source model)", type: "log", tickvals: steps.map(x), ticktext: steps.map(String) },
      yaxis: { title: opts.metricLabel ?? "source-domain 20-NN accuracy (%)" },
      legend: { orientation: "h", y: -0.25 },
      height: 480,
    },
  };
}
