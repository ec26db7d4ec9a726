// Learning rate per update, recomputed every iteration. Warm-up and cosine follow transformers'
// get_cosine_schedule_with_warmup (a LambdaLR): update t (0-based) uses
//   t < W:  lr * t / W                      (so the very first update has lr 0)
//   else:   lr * 0.5 * (1 + cos(pi * (t - W) / (T - W)))   -> 0 at t = T
export interface ScheduleConfig {
  /** "cosine": warm-up then cosine to 0; "constant": warm-up then flat. */
  kind: "cosine" | "constant";
  warmupSteps: number;
}

export function learningRate(base: number, s: ScheduleConfig, t: number, totalSteps: number): number {
  const w = s.warmupSteps;
  if (t < w) return (base * t) / Math.max(1, w);
  if (s.kind === "constant") return base;
  const progress = (t - w) / Math.max(1, totalSteps - w);
  return base * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Snapshot steps for forgetting curves: 0, 1, 2, 5, 10, 20, 50, ... up to `max` (and `max`). */
export function forgettingSteps(max: number): number[] {
  const out = [0];
  for (let scale = 1; scale <= max; scale *= 10) for (const m of [1, 2, 5]) if (m * scale <= max) out.push(m * scale);
  if (out[out.length - 1] !== max) out.push(max);
  return out;
}
