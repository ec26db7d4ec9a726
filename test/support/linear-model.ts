// A small real ImageModel for engine tests: flatten -> dense(hidden) -> relu = "CLS feature",
// -> dense(classes) = logits. Variable names follow the PyTorch state-dict style.
import * as tf from "@tensorflow/tfjs";
import type { ForwardOptions, ImageModel } from "../../src/model/types";
import { Rng } from "../../src/ground/rng";

let uid = 0;

export class TinyMlp implements ImageModel {
  readonly inChannels = 3;
  private readonly vars = new Map<string, tf.Variable>();
  constructor(readonly imageSize: number, readonly numClasses: number, readonly featureDim: number, seed = 0) {
    const rng = new Rng(seed);
    const d = imageSize * imageSize * 3;
    const id = ++uid;
    const v = (name: string, t: tf.Tensor) => this.vars.set(name, tf.variable(t, true, `tiny${id}/${name}`));
    v("fc1.weight", tf.randomNormal([d, featureDim], 0, 1 / Math.sqrt(d), "float32", rng.seed()));
    v("fc1.bias", tf.zeros([featureDim]));
    v("head.weight", tf.randomNormal([featureDim, numClasses], 0, 1 / Math.sqrt(featureDim), "float32", rng.seed()));
    v("head.bias", tf.zeros([numClasses]));
  }
  features(x: tf.Tensor4D, _opts?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const flat = tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D; // [B, H*W*3]
      return tf.relu(tf.add(tf.matMul(flat, this.vars.get("fc1.weight")!), this.vars.get("fc1.bias")!)) as tf.Tensor2D; // [B,D]
    });
  }
  logits(x: tf.Tensor4D, opts?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(this.features(x, opts), this.vars.get("head.weight")!), this.vars.get("head.bias")!) as tf.Tensor2D); // [B,K]
  }
  namedVariables(): Map<string, tf.Variable> {
    return new Map(this.vars);
  }
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
  }
}

/** A learnable toy dataset: class k images are bright in channel k % 3 plus noise. */
export function toyImages(n: number, size: number, classes: number, seed = 0): { pixels: Uint8Array; labels: Int32Array } {
  const rng = new Rng(`toy/${seed}`);
  const pixels = new Uint8Array(n * size * size * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let p = 0; p < size * size; p++) {
      for (let c = 0; c < 3; c++) {
        const base = c === labels[i] % 3 ? 170 + 20 * Math.floor(labels[i] / 3) : 60;
        pixels[(i * size * size + p) * 3 + c] = Math.max(0, Math.min(255, Math.round(base + 30 * rng.normal())));
      }
    }
  }
  return { pixels, labels };
}
