// Typed description of a fine-tuning strategy (PAPERS.md section 2 and 6). Shared by
// applyStrategy (builds it) and the analytic parameter count (src/model/params.ts).

/** A fresh, re-initialised head (e.g. for a new class count). */
export interface HeadSpec {
  /** Classes of the new head; default the model's. */
  classes?: number;
  /** Seed of the head's initialisation; default 0. */
  seed?: number;
  /**
   * "timm": trunc-normal(0.02) weight, zero bias (timm's init, the default CHOICE);
   * "torch": nn.Linear's default, U(+-1/sqrt(in)) for weight and bias.
   */
  init?: "timm" | "torch";
}

interface Common {
  /** Replace the head before training (fresh, seeded). */
  freshHead?: HeadSpec;
}

export interface FullSpec extends Common {
  kind: "full";
}

export interface TopKSpec extends Common {
  kind: "top-k";
  /** The last k blocks train (with the head). */
  k: number;
  /** Also train the final norm; default false (Paper A's Top-3 count, 21,340,516, excludes it). */
  trainFinalNorm?: boolean;
}

export interface LinearSpec extends Common {
  kind: "linear";
}

export interface LoraSpec extends Common {
  kind: "lora";
  rank: number;
  /** Default rank (scale 1). */
  alpha?: number;
  /** Default ["query", "value"]. */
  targets?: string[];
  dropout?: number;
  blocks?: number[];
  rslora?: boolean;
  /** Seed of A and of dropout masks; default 0. */
  seed?: number;
}

export interface SelectiveLoraSpec extends Omit<LoraSpec, "kind"> {
  kind: "selective-lora";
  /** Gate threshold; default 0.1 (TAPS). */
  tau?: number;
  /** Initial scores; default 0.15 (TAPS). */
  scoreInit?: number;
  /** Penalty weight lambda on mean |s|; default 0 (no penalty). */
  lambda?: number;
  /** No penalty before this optimizer step (TAPS: 2 epochs' worth); default 0. */
  penaltyStartStep?: number;
}

export interface BlockExpansionSpec extends Common {
  kind: "block-expansion";
  /** Number of inserted blocks (official split for it); or give split, or after. */
  p?: number;
  split?: number;
  /** A copy of each of these blocks (1-based) right after it. */
  after?: number[];
}

export type StrategySpec = FullSpec | TopKSpec | LinearSpec | LoraSpec | SelectiveLoraSpec | BlockExpansionSpec;
export type StrategyKind = StrategySpec["kind"];
export const STRATEGY_KINDS: readonly StrategyKind[] = ["full", "top-k", "linear", "lora", "selective-lora", "block-expansion"];

/** One line, e.g. "lora r=8 alpha=8 on query,value + head". */
export function describeSpec(s: StrategySpec): string {
  const head = s.freshHead ? ` + fresh head${s.freshHead.classes !== undefined ? ` (${s.freshHead.classes} classes)` : ""}` : " + head";
  switch (s.kind) {
    case "full":
      return "full fine-tuning (every parameter)";
    case "top-k":
      return `top-${s.k}: last ${s.k} blocks${s.trainFinalNorm ? " + final norm" : ""}${head}`;
    case "linear":
      return `linear probe: head only${s.freshHead ? " (fresh)" : ""}`;
    case "lora":
    case "selective-lora": {
      const t = (s.targets ?? ["query", "value"]).join(",");
      const sel = s.kind === "selective-lora" ? ` gated (tau=${s.tau ?? 0.1}, s0=${s.scoreInit ?? 0.15}, lambda=${s.lambda ?? 0})` : "";
      return `${s.kind} r=${s.rank} alpha=${s.alpha ?? s.rank} on ${t}${sel}${head}`;
    }
    case "block-expansion":
      return `block expansion ${s.p !== undefined ? `p=${s.p}` : s.split !== undefined ? `split=${s.split}` : `after blocks ${(s.after ?? []).join(",")}`}: inserted blocks${head}`;
  }
}
