// Paper B (arXiv 2501.15377, after TAPS: Wallingford et al., CVPR 2022), its DINO-ViT path: selective LoRA on the Paper A
// recipe and retention measure (the paper does not publish its DINO details: CHOICE). Every LoRA
// block (one A,B pair on one frozen linear layer) has a score s; the forward pass uses the hard
// gate 1[s >= tau], the loss adds lambda * mean |s| after a warm-up, and the inference form merges
// the open blocks and drops the others.
//
// CHOICES, stated in the notebook: TAPS's constants (tau 0.1, scores start at 0.15, so every block
// starts open); the penalty starts after 20% of the iterations (TAPS: after 2 epochs, 2 of
// FLYP's 10); LoRA on every linear layer of every block (query, key, value, proj, fc1, fc2: the
// paper gates "every LoRA block" without listing them; query/value alone would give the laptop's
// 4-block model 8 blocks, too few for a 5% share); rank 8 (Table 1's middle rank) with Table 1's
// LoRA r=8 learning rate; plain LoRA at the same rank and placement as the reference.
import type { SelectiveLoraSpec, LoraSpec } from "../../adapters/spec";
import { TAPS_SCORE_INIT, TAPS_TAU } from "../../adapters/selective";
import * as paperA from "../paper-a";
import type { Preset } from "../presets";
import type { Variant } from "../sweep";

export const ALL_LINEARS = ["query", "key", "value", "proj", "fc1", "fc2"] as const;

export interface SelectiveOptions {
  rank?: number;
  targets?: readonly string[];
  /** The penalty starts after this share of the iterations. */
  penaltyStart?: number;
  target?: paperA.Target;
}

const defaults = (o: SelectiveOptions) => ({ rank: o.rank ?? 8, targets: [...(o.targets ?? ALL_LINEARS)], penaltyStart: o.penaltyStart ?? 0.2 });

/**
 * The reference rows: full fine-tuning, plain LoRA at the same rank and placement, and linear
 * probing (what selective LoRA becomes when every gate closes). All and Linear are 02's rows.
 */
export function referenceVariants(preset: Preset, seeds: readonly number[], o: SelectiveOptions = {}): Variant[] {
  const d = defaults(o);
  return seeds.flatMap((seed) => {
    const all = paperA.variant(preset, "All", seed, { target: o.target });
    const linear = paperA.variant(preset, "Linear", seed, { target: o.target });
    const lora = paperA.variant(preset, "LoRA r=8", seed, { target: o.target });
    const strategy = { ...(lora.strategy as LoraSpec), rank: d.rank, targets: d.targets };
    return [
      { ...all, tags: { ...all.tags, family: "reference" } },
      { ...linear, tags: { ...linear.tags, family: "reference" } },
      { ...lora, name: String(lora.name).replace(/^a-/, "b-").replace(/-lora-r-8$/, `-lora-r${d.rank}-all-linears`), tags: { ...lora.tags, method: `LoRA r=${d.rank}`, family: "reference", rank: d.rank }, strategy },
    ];
  });
}

/** One selective-LoRA run at penalty weight `lambda`. */
export function selectiveVariant(preset: Preset, lambda: number, seed: number, o: SelectiveOptions = {}): Variant {
  const d = defaults(o);
  const lora = paperA.variant(preset, "LoRA r=8", seed, { target: o.target });
  const steps = paperA.stepsFor(preset);
  const l = lora.strategy as LoraSpec;
  const strategy: SelectiveLoraSpec = {
    kind: "selective-lora", rank: d.rank, targets: d.targets, seed: l.seed, freshHead: l.freshHead,
    tau: TAPS_TAU, scoreInit: TAPS_SCORE_INIT, lambda, penaltyStartStep: Math.round(d.penaltyStart * steps),
  };
  return {
    ...lora,
    name: String(lora.name).replace(/^a-/, "b-").replace(/-lora-r-8$/, `-selective-r${d.rank}-lambda${lambda}`),
    tags: { ...lora.tags, method: `Selective LoRA r=${d.rank}`, family: "selective", lambda, rank: d.rank },
    strategy,
  };
}

export interface Study {
  base: ReturnType<typeof paperA.recipe>;
  variants: Variant[];
}

/** The smoke preset runs the grid's two ends and its middle (every code path); the others run all given. */
export function lambdasFor(preset: Preset, lambdas: readonly number[]): number[] {
  if (lambdas.length === 0) throw new Error("lambdas: give at least one penalty weight");
  if (preset !== "smoke" || lambdas.length <= 3) return [...lambdas];
  return [lambdas[0], lambdas[Math.floor(lambdas.length / 2)], lambdas[lambdas.length - 1]];
}

/** The lambda sweep with its three reference rows. */
export function lambdaStudy(preset: Preset, o: SelectiveOptions & { lambdas?: readonly number[]; seeds?: readonly number[] } = {}): Study {
  const seeds = paperA.seedsFor(preset, o.seeds ?? [0, 1]);
  const lambdas = lambdasFor(preset, o.lambdas ?? [0, 0.1, 0.15, 0.2, 0.21, 0.22, 0.23, 0.24, 0.25, 0.3]);
  return {
    base: paperA.recipe(preset, { target: o.target }),
    variants: [...referenceVariants(preset, seeds, o), ...lambdas.flatMap((lambda) => seeds.map((s) => selectiveVariant(preset, lambda, s, o)))],
  };
}
