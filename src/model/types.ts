// The contract between the model library (model/, adapters/) and the engine (training/,
// evaluation/): anything that maps NHWC images to logits and CLS features, over named variables.
import type * as tf from "@tensorflow/tfjs";

export interface ForwardOptions {
  /** Enables dropout (LoRA dropout); default false. */
  training?: boolean;
  /**
   * The update being computed (the trainer's step). Dropout masks are then a function of (seed,
   * layer, step), so a run resumed from a checkpoint draws the masks the uninterrupted run drew.
   */
  step?: number;
}

export interface ImageModel {
  /** Input resolution the model expects (square), and channels. */
  readonly imageSize: number;
  readonly inChannels: number;
  /** Classes of the head; 0 when the model has no head. */
  readonly numClasses: number;
  /** Width of the CLS feature returned by `features`. */
  readonly featureDim: number;

  /** x: [B,H,W,C] normalised -> logits [B,numClasses]. */
  logits(x: tf.Tensor4D, opts?: ForwardOptions): tf.Tensor2D;
  /** x: [B,H,W,C] -> CLS token after the final norm [B,featureDim] (k-NN evaluation uses this). */
  features(x: tf.Tensor4D, opts?: ForwardOptions): tf.Tensor2D;

  /** Every variable of the model (base weights and adapters), keyed by its state-dict name. */
  namedVariables(): Map<string, tf.Variable>;
  dispose(): void;
}

/** A model prepared for fine-tuning: which variables train and what extra loss terms apply. */
export interface TrainableModel {
  model: ImageModel;
  /** Exactly the variables the optimizer updates. */
  trainable: tf.Variable[];
  /** Extra loss (e.g. the selective-LoRA gate penalty); undefined when there is none. */
  regularizer?: (step: number) => tf.Scalar | undefined;
  /**
   * The task loss of a batch (x [B,H,W,C], its labels, the update's index); default the
   * cross-entropy of `model.logits` (FLYP's contrastive loss replaces it, for instance).
   */
  loss?: (x: tf.Tensor4D, labels: Int32Array, step: number) => tf.Scalar;
  /** After every optimizer update (e.g. clamping CLIP's logit scale). */
  afterStep?: () => void;
  /** Human-readable description, e.g. "lora r=8 on query,value + head". */
  describe: string;
}
