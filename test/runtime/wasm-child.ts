// Child process of wasm-threads.test.ts: one ViT forward + backward on the wasm backend with the
// thread count from STUDY_WASM_THREADS; prints the backend report and every output as base64
// float32 (bit-exact) on one JSON line. It never calls process.exit: it must exit on its own.
import * as tf from "@tensorflow/tfjs";
import { vitConfig } from "../../src/model/config";
import { gelu } from "../../src/model/ops";
import { ViT } from "../../src/model/vit";
import { initBackend } from "../../src/runtime/backend";
import { wasmSetup } from "../../src/runtime/wasm";

async function main(): Promise<void> {
  const report = await initBackend({ prefer: "wasm", force: true });
  // Big enough that XNNPACK splits its matmuls across threads (M = 8 x 17 tokens).
  const cfg = vitConfig({ imageSize: 16, patchSize: 4, width: 48, depth: 2, heads: 3, numClasses: 7 });
  const model = ViT.create(cfg, { seed: 5 });
  const x = tf.randomNormal([8, 16, 16, 3], 0, 1, "float32", 9) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 0], "int32"), 7);
  const vars = [...model.params.values()];
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.logits(x)) as tf.Scalar, vars);
  const b64 = (t: tf.Tensor): string => Buffer.from(new Float32Array(t.dataSync()).buffer).toString("base64");
  const out: Record<string, string> = { loss: b64(value), logits: b64(model.logits(x)) };
  for (const [name, v] of model.params) out[`grad:${name}`] = b64(grads[v.name]);
  // Kernels the SIMD pool splits over threads: products by row blocks (one slice, 37 rows) and by
  // slices (five), GELU and its gradient by ranges. Each output element comes from one thread,
  // so these must match single-threaded bit for bit ("exact:").
  for (const [a, b] of [[[37, 19], [19, 23]], [[5, 9, 7], [5, 7, 12]], [[2, 130, 16], [2, 16, 65]]]) {
    out[`exact:matmul ${a}x${b}`] = b64(tf.matMul(tf.randomNormal(a, 0, 1, "float32", 3), tf.randomNormal(b, 0, 1, "float32", 4)));
  }
  const g = tf.mul(tf.randomNormal([5, 3, 12], 0, 1, "float32", 6), 3);
  out["exact:gelu"] = b64(gelu(g));
  out["exact:gelu gradient"] = b64(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), tf.range(0, 180).reshape([5, 3, 12]))))(g));
  console.log(JSON.stringify({ reason: report.reason, setup: wasmSetup(), out }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
