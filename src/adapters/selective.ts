// Selective LoRA (Paper B, after TAPS): each LoRA block b (one A,B pair on one linear) has a
// trainable score s_b; the forward pass uses the hard gate 1[s_b >= tau] times the LoRA update,
// the backward pass treats the gate as the identity (straight-through: d1[s>=tau]/ds := 1), so
// dL/ds_b = sum(dL/dy * delta_b). The loss adds lambda * mean_b |s_b|. At inference inactive
// blocks are dropped and active ones merged into W: the forward pass is the base model's.
import * as tf from "@tensorflow/tfjs";
import type { ViT } from "../model/vit";
import { LoraAdapter, LoraConfig, LoraLayer, ResolvedLoraConfig } from "./lora";
import type { LoraSite } from "./targets";

/** TAPS constants (Paper B, arXiv 2501.15377, after FLYP: Goyal et al. 2022). */
export const TAPS_TAU = 0.1;
export const TAPS_SCORE_INIT = 0.15;

export interface SelectiveLoraConfig extends LoraConfig {
  /** Threshold of the hard gate; default 0.1 (TAPS). */
  tau?: number;
  /** Initial score of every block; default 0.15 (TAPS: all blocks start active). */
  scoreInit?: number;
}

/** Hard gate 1[s >= tau] with the straight-through gradient dy -> dy. */
export function straightThroughGate(s: tf.Scalar, tau: number): tf.Scalar {
  const f = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.cast(tf.greaterEqual(inputs[0] as tf.Tensor, tau), "float32") as tf.Scalar,
    gradFunc: (dy: tf.Scalar) => [dy],
  }));
  return f(s);
}

export class SelectiveLoraLayer extends LoraLayer {
  readonly score: tf.Variable; // [] scalar

  constructor(model: ViT, site: LoraSite, adapterName: string, config: ResolvedLoraConfig, readonly tau: number, scoreInit: number) {
    super(model, site, adapterName, config);
    this.score = this.register("lora_score", tf.scalar(scoreInit));
  }

  override variables(): tf.Variable[] {
    return [this.A, this.B, this.score];
  }

  protected override extraKeys(): string[] {
    return ["lora_score"];
  }

  protected override gate(): tf.Scalar {
    return straightThroughGate(this.score as tf.Scalar, this.tau);
  }
}

/** Where the gates stand: scores in layer order, the open blocks' names, their share of all blocks. */
export interface GateReport {
  scores: number[];
  active: string[];
  /** Share of blocks with s >= tau, in [0,1]. */
  share: number;
}

export interface PenaltyOptions {
  /** lambda; 0 turns the penalty off. */
  lambda: number;
  /** No penalty before this step (TAPS: the first 2 epochs); default 0. */
  startStep?: number;
}

export class SelectiveLoraAdapter extends LoraAdapter<SelectiveLoraLayer> {
  readonly tau: number;

  private constructor(model: ViT, name: string, cfg: ResolvedLoraConfig, layers: SelectiveLoraLayer[], tau: number) {
    super(model, name, cfg, layers);
    this.tau = tau;
  }

  static attachSelective(model: ViT, config: SelectiveLoraConfig, name = "default"): SelectiveLoraAdapter {
    const tau = config.tau ?? TAPS_TAU;
    const init = config.scoreInit ?? TAPS_SCORE_INIT;
    if (!Number.isFinite(tau) || !Number.isFinite(init)) throw new Error("selective LoRA: tau and scoreInit must be finite");
    const { cfg, layers } = LoraAdapter.build(model, config, name, (s, c) => new SelectiveLoraLayer(model, s, name, c, tau, init));
    return new SelectiveLoraAdapter(model, name, cfg, layers, tau);
  }

  /** Score variables, one per block, in layer order. */
  scoreVariables(): tf.Variable[] {
    return this.layers.map((l) => l.score);
  }

  /**
   * The scores and the blocks they open, read back in one transfer. Asynchronous because the
   * webgpu backend in Node has no synchronous read (tfjs reads through an OffscreenCanvas there).
   */
  async gates(): Promise<GateReport> {
    if (this.layers.length === 0) return { scores: [], active: [], share: 0 };
    const stacked = tf.stack(this.scoreVariables()); // [blocks]
    const scores = Array.from(await stacked.data());
    stacked.dispose();
    const tau = Math.fround(this.tau); // the device compares in float32
    const active = this.layers.filter((_, i) => scores[i] >= tau).map((l) => l.site.name);
    return { scores, active, share: active.length / this.layers.length };
  }

  /** lambda * mean_b |s_b| as a scalar tensor (differentiable in the scores). */
  penalty(lambda: number): tf.Scalar {
    return tf.tidy(() => tf.mul(lambda, tf.mean(tf.abs(tf.stack(this.scoreVariables())))) as tf.Scalar);
  }

  /** The regularizer a TrainableModel exposes: undefined before `startStep` or when lambda is 0. */
  regularizer(opts: PenaltyOptions): (step: number) => tf.Scalar | undefined {
    return (step: number) => (opts.lambda === 0 || step < (opts.startStep ?? 0) ? undefined : this.penalty(opts.lambda));
  }

  /**
   * Inference form: merges the active blocks into W, drops the inactive ones and removes every
   * hook, so the forward pass is exactly the base model's. Returns the names of the merged blocks.
   */
  async toInference(): Promise<string[]> {
    const { active } = await this.gates();
    this.mergeAndUnload(); // merge() folds only open gates into W; closed ones leave it untouched
    return active;
  }
}

/** Shorthand: selective LoRA on query and value of every block, TAPS constants. */
export function addSelectiveLora(model: ViT, config: SelectiveLoraConfig, name = "default"): SelectiveLoraAdapter {
  return SelectiveLoraAdapter.attachSelective(model, config, name);
}
