// FLOPs of a training step and the chip's peak, for "achieved TFLOP/s" in the GPU benchmark.
//
// Counted analytically from the matmul layers of src/model/flops.ts (LayerNorm, softmax, GELU and
// adds are left out, as there), one image:
//   forward   every layer once (unmerged LoRA adapters included);
//   backward  the input gradient of every layer above the lowest trainable one (both operands of
//             the two attention matmuls), plus the weight gradient of every trainable layer.
// Full fine-tuning comes to about 3x the forward MACs ("6N" FLOPs); LoRA to about 2x (the
// activation gradients go all the way down, the weight gradients are the adapters'); block
// expansion p=3 stops the backward at the first inserted block. FLOP = 2 MAC. The PyTorch rows
// run the same shapes and strategies, so they are counted with the same numbers.
import type { StrategyResult } from "../src/adapters/strategies";
import { modelForwardMacs } from "../src/model/flops";

/**
 * NVIDIA H200 fp32 peak without tensor cores, TFLOP/s: 67 for the SXM board (60 for H200 NVL),
 * from NVIDIA's "H200 Tensor Core GPU" datasheet (specifications table, "FP32").
 */
export const H200_FP32_PEAK_TFLOPS = 67;
/**
 * The same datasheet's TF32 tensor-core figure is 989 TFLOP/s "with sparsity"; dense is half of it.
 * The PyTorch rows with TF32 on are compared with this one.
 */
export const H200_TF32_DENSE_PEAK_TFLOPS = 989 / 2;

export interface StepMacs {
  /** MACs of one forward pass of one image. */
  forward: number;
  /** MACs of one training step (forward + backward) of one image. */
  train: number;
  /** The layer the backward pass stops at. */
  lowestTrainable: string;
}

/** Forward and training-step MACs per image of a model as a strategy trains it. */
export function stepMacs(tm: StrategyResult): StepMacs {
  const report = modelForwardMacs(tm.model);
  const base = report.layers.filter((l) => !l.name.startsWith("lora:"));
  const order = new Map(base.map((l, i) => [l.name, i]));
  // An adapter site ("blocks.3.attn.qkv.query") sits at its linear layer ("blocks.3.attn.qkv").
  const linearOf = (site: string): string => {
    let best = "";
    for (const l of base) if ((site === l.name || site.startsWith(`${l.name}.`)) && l.name.length > best.length) best = l.name;
    if (!best) throw new Error(`stepMacs: adapter site '${site}' is on no layer`);
    return best;
  };
  const names = tm.trainableNames;
  const hasParams = (layer: string) => names.some((n) => n.startsWith(`${layer}.`));
  // cls token and positions are added right after the patch embedding: they count as its layer.
  const embedTrainable = names.some((n) => n === "cls_token" || n === "pos_embed" || n.startsWith("patch_embed."));
  const rows = report.layers.map((l) => {
    const adapter = l.name.startsWith("lora:");
    const at = adapter ? linearOf(l.name.slice(5)) : l.name;
    const trainable = adapter ? true : l.name === "patch_embed" ? embedTrainable : hasParams(l.name);
    const attnMatmul = !adapter && /\.attn\.(scores|values)$/.test(l.name);
    return { name: l.name, macs: l.macs, index: order.get(at) as number, trainable, attnMatmul };
  });
  const lowest = Math.min(...rows.filter((r) => r.trainable).map((r) => r.index));
  let train = report.macs;
  for (const r of rows) {
    if (r.index > lowest) train += r.attnMatmul ? 2 * r.macs : r.macs; // input gradients
    if (r.trainable && !r.attnMatmul) train += r.macs; // weight gradients
  }
  return { forward: report.macs, train, lowestTrainable: base[lowest]?.name ?? "none" };
}

/** TFLOP/s of `macsPerImage` MACs at `imgPerSec`. */
export const tflops = (macsPerImage: number, imgPerSec: number): number => (2 * macsPerImage * imgPerSec) / 1e12;
