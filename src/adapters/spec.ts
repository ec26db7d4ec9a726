// Typed description of a fine-tuning strategy (Paper A, arXiv 2404.17245; Paper B, arXiv 2501.15377), as run configs hold
// it. What each kind does (apply, count, describe) is defined once, in src/adapters/strategies.ts.
import type { LoraConfig } from "./lora";
import type { SelectiveLoraConfig } from "./selective";
import type { ExpansionOptions } from "./expansion";

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

/** LoRA (its options are the adapter's own: src/adapters/lora.ts). */
export interface LoraSpec extends Common, LoraConfig {
  kind: "lora";
}

/** Selective LoRA: the gates' options (src/adapters/selective.ts) and the penalty. */
export interface SelectiveLoraSpec extends Common, SelectiveLoraConfig {
  kind: "selective-lora";
  /** Penalty weight lambda on mean |s|; default 0 (no penalty). */
  lambda?: number;
  /** No penalty before this optimizer step (TAPS: 2 epochs' worth); default 0. */
  penaltyStartStep?: number;
}

/** Block expansion: where the identity blocks go (src/adapters/expansion.ts). */
export interface BlockExpansionSpec extends Common, ExpansionOptions {
  kind: "block-expansion";
}

export type StrategySpec = FullSpec | TopKSpec | LinearSpec | LoraSpec | SelectiveLoraSpec | BlockExpansionSpec;
export type StrategyKind = StrategySpec["kind"];
export const STRATEGY_KINDS: readonly StrategyKind[] = ["full", "top-k", "linear", "lora", "selective-lora", "block-expansion"];
