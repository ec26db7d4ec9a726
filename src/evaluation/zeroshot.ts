// Zero-shot classification with CLIP, as openai/CLIP notebooks/Prompt_Engineering_for_ImageNet:
// each class's weight is the mean of its prompts' normalised text features, renormalised
// (zeroshot_classifier); an image's logits are its normalised feature against those weights.
// Top-1 runs through evaluateAccuracy (src/evaluation/features.ts): same batching, same loader.
import * as tf from "@tensorflow/tfjs";
import type { ImageSet } from "../data/dataset";
import type { Triple, TransformSpec } from "../data/transforms";
import { CLIP, l2Normalize } from "../model/clip";
import type { TokenizeOptions, SimpleTokenizer } from "../model/tokenizer";
import type { ForwardOptions, ImageModel } from "../model/types";
import { AccuracyResult, evaluateAccuracy, PassOptions } from "./features";
import { DEFAULT_TEMPLATE } from "./imagenet-prompts";

/** The reference's image normalisation (clip/clip.py `_transform`). */
export const CLIP_MEAN: Triple = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: Triple = [0.26862954, 0.26130258, 0.27577711];

/** The reference's eval transform: shorter side to `size` (bicubic), centre crop, CLIP mean/std. */
export function clipEval(size = 224): TransformSpec {
  return { kind: "resize-center-crop", resize: size, size, interpolation: "bicubic", mean: CLIP_MEAN, std: CLIP_STD };
}

/** template.format(classname) for the reference's one-`{}` templates. */
export function fillTemplate(template: string, classname: string): string {
  const at = template.indexOf("{}");
  if (at < 0 || template.indexOf("{}", at + 2) >= 0) throw new Error(`prompt template '${template}' must contain '{}' exactly once`);
  return template.slice(0, at) + classname + template.slice(at + 2);
}

export interface ZeroShotClassifier {
  classes: readonly string[];
  templates: readonly string[];
  /** Unit-norm class embeddings as columns [embedDim, classes] (the notebook's zeroshot_weights). */
  weights: tf.Tensor2D;
}

export interface ClassifierOptions extends TokenizeOptions {
  /** Prompts per text-encoder pass (default 256); whole classes go together. */
  textBatchSize?: number;
}

/** The notebook's zeroshot_classifier over `classnames` x `templates` (default "a photo of a {}."). */
export function zeroShotClassifier(
  clip: CLIP,
  tokenizer: SimpleTokenizer,
  classnames: readonly string[],
  templates: readonly string[] = [DEFAULT_TEMPLATE],
  opts: ClassifierOptions = {},
): ZeroShotClassifier {
  if (classnames.length === 0 || templates.length === 0) throw new Error("zero-shot classifier: needs at least one class and one template");
  const E = clip.config.embedDim;
  const T = templates.length;
  const perPass = Math.max(1, Math.floor((opts.textBatchSize ?? 256) / T)); // classes per pass
  const parts: tf.Tensor2D[] = []; // [g,E] per pass, concatenated on the device
  for (let c0 = 0; c0 < classnames.length; c0 += perPass) {
    const group = classnames.slice(c0, c0 + perPass);
    const { ids, shape } = tokenizer.tokenize(group.flatMap((c) => templates.map((t) => fillTemplate(t, c))), opts);
    const emb = tf.tidy(() => {
      const f = l2Normalize(clip.encodeText(tf.tensor2d(ids, shape, "int32"))); // [g*T,E]
      return l2Normalize(tf.mean(f.reshape([group.length, T, E]), 1) as tf.Tensor2D); // [g,E]
    });
    parts.push(emb);
  }
  const weights = tf.tidy(() => tf.transpose(tf.concat(parts, 0)) as tf.Tensor2D); // [E,K]
  tf.dispose(parts);
  return { classes: [...classnames], templates: [...templates], weights };
}

/**
 * CLIP with a zero-shot head as an ImageModel: features are the normalised image embeddings,
 * logits exp(logit_scale) * features @ weights (the notebook uses 100; argmax is the same).
 * dispose() frees the classifier weights, not the CLIP model.
 */
export class ZeroShotModel implements ImageModel {
  constructor(readonly clip: CLIP, readonly classifier: ZeroShotClassifier) {
    const [E] = classifier.weights.shape;
    if (E !== clip.config.embedDim) throw new Error(`zero-shot classifier has ${E}-d weights, the CLIP model ${clip.config.embedDim}-d features`);
  }
  get imageSize(): number {
    return this.clip.config.vision.imageSize;
  }
  get inChannels(): number {
    return this.clip.config.vision.inChannels;
  }
  get numClasses(): number {
    return this.classifier.classes.length;
  }
  get featureDim(): number {
    return this.clip.config.embedDim;
  }
  features(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.clip.encodeImage(x, opts))); // [B,E]
  }
  logits(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.exp(this.clip.logitScale), tf.matMul(this.features(x, opts), this.classifier.weights)) as tf.Tensor2D); // [B,K]
  }
  namedVariables(): Map<string, tf.Variable> {
    return this.clip.namedVariables();
  }
  dispose(): void {
    this.classifier.weights.dispose();
  }
}

/** Top-1 (and mean cross-entropy of the scaled logits) of a zero-shot classifier on a dataset whose labels index its classes. */
export async function zeroShotAccuracy(clip: CLIP, classifier: ZeroShotClassifier, ds: ImageSet, opts: PassOptions): Promise<AccuracyResult> {
  if (classifier.classes.length !== ds.classes.length) {
    throw new Error(`zero-shot: the classifier has ${classifier.classes.length} classes, ${ds.name} has ${ds.classes.length}`);
  }
  return evaluateAccuracy(new ZeroShotModel(clip, classifier), ds, opts);
}

export interface ZeroShotOptions extends PassOptions, ClassifierOptions {
  /** Names in the prompts; default the dataset's class names. */
  classnames?: readonly string[];
  /** Default ["a photo of a {}."]; IMAGENET_TEMPLATES for the 80-prompt ensemble. */
  templates?: readonly string[];
}

/** Builds the classifier for a dataset's classes, evaluates, frees the classifier. */
export async function zeroShotEvaluate(clip: CLIP, tokenizer: SimpleTokenizer, ds: ImageSet, opts: ZeroShotOptions): Promise<AccuracyResult> {
  const classifier = zeroShotClassifier(clip, tokenizer, opts.classnames ?? ds.classes, opts.templates, opts);
  try {
    return await zeroShotAccuracy(clip, classifier, ds, opts);
  } finally {
    classifier.weights.dispose();
  }
}
