// FLYP, "Finetune like you pretrain" (Goyal et al. 2022; locuslab/FLYP src/models/flyp_loss.py):
// fine-tune both CLIP towers with CLIP's own contrastive loss, each image paired with a prompt
// of its class. The loss is open_clip's ClipLoss, which FLYP uses: with unit features and
// s = exp(logit_scale), logits_per_image = s * img @ txt^T, logits_per_text its transpose, and
// (CE(logits_per_image, arange) + CE(logits_per_text, arange)) / 2. Two images of one class in a
// batch are negatives of each other's prompt, as there.
import * as tf from "@tensorflow/tfjs";
import { CLIP, l2Normalize } from "../model/clip";
import type { SimpleTokenizer, TokenizedBatch, TokenizeOptions } from "../model/tokenizer";
import type { ForwardOptions } from "../model/types";
import { fillTemplate } from "../evaluation/zeroshot";
import type { Rng } from "../ground/rng";

/**
 * CLIP's symmetric contrastive loss. imageFeatures and textFeatures [B,E] (normalised here;
 * pair i is row i of each), logitScale the log of the scale (a scalar, usually trainable).
 */
export function clipContrastiveLoss(imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D, logitScale: tf.Tensor): tf.Scalar {
  const [B] = imageFeatures.shape;
  if (textFeatures.shape[0] !== B) throw new Error(`contrastive loss: ${B} images but ${textFeatures.shape[0]} texts`);
  return tf.tidy(() => {
    const perImage = tf.mul(tf.exp(logitScale), tf.matMul(l2Normalize(imageFeatures), l2Normalize(textFeatures), false, true)) as tf.Tensor2D; // [B,B]
    // Cross-entropy with targets arange(B), written with the diagonal (tf.oneHot refuses depth 1):
    // CE(rows) = mean(logsumexp(row) - L[i,i]); logits_per_text's rows are perImage's columns.
    const diag = tf.sum(tf.mul(perImage, tf.eye(B)), 1); // [B]
    const perImageCE = tf.mean(tf.sub(tf.logSumExp(perImage, 1), diag)); // []
    const perTextCE = tf.mean(tf.sub(tf.logSumExp(perImage, 0), diag)); // []
    return tf.div(tf.add(perImageCE, perTextCE), 2) as tf.Scalar;
  });
}

/** The FLYP loss of a batch: images [B,H,W,3] against their prompts' token ids [B,L]. */
export function flypLoss(clip: CLIP, images: tf.Tensor4D, textIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Scalar {
  return tf.tidy(() => clipContrastiveLoss(clip.encodeImage(images, opts), clip.encodeText(textIds, opts), clip.logitScale));
}

/**
 * One prompt per image: its class name in a template, drawn uniformly with `rng` (the first
 * template without one). labels index `classnames`.
 */
export function flypPrompts(labels: ArrayLike<number>, classnames: readonly string[], templates: readonly string[], rng?: Rng): string[] {
  if (templates.length === 0) throw new Error("FLYP prompts: no templates");
  return Array.from(labels, (y) => {
    const name = classnames[y];
    if (name === undefined) throw new Error(`FLYP prompts: label ${y} has no class name (${classnames.length} classes)`);
    return fillTemplate(templates[rng ? rng.int(templates.length) : 0], name);
  });
}

/** flypPrompts, tokenized: [B, contextLength] int32 ids. */
export function flypPromptIds(tokenizer: SimpleTokenizer, labels: ArrayLike<number>, classnames: readonly string[], templates: readonly string[], rng?: Rng, opts: TokenizeOptions = {}): TokenizedBatch {
  return tokenizer.tokenize(flypPrompts(labels, classnames, templates, rng), opts);
}

/** Clamps logit_scale to [0, ln 100] after an optimizer step, as open_clip's training loop does. */
export function clampLogitScale(clip: CLIP, max = Math.log(100)): void {
  tf.tidy(() => clip.logitScale.assign(tf.clipByValue(clip.logitScale, 0, max)));
}
