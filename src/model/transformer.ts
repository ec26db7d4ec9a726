// The pre-norm transformer block both towers use (timm's Block, OpenAI CLIP's
// ResidualAttentionBlock): x + attn(norm1(x)), then x + mlp(norm2(x)), with timm names under a
// prefix (`blocks.3.attn.qkv`, `blocks.3.mlp.fc1`, ...). The linear layers go through the
// module's `linear`, so adapters hook them the same way in either tower.
import * as tf from "@tensorflow/tfjs";
import type { Activation } from "./config";
import type { LinearModule } from "./module";
import { customOp, gelu } from "./ops";
import type { ForwardOptions } from "./types";

/** Exact erf GELU or CLIP's QuickGELU x * sigmoid(1.702 x). */
export function activation(kind: Activation, x: tf.Tensor): tf.Tensor {
  if (kind === "quick_gelu") return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
  return gelu(x);
}

/**
 * Additive causal mask [T,T]: 0 on and below the diagonal, a large negative number above (the
 * reference fills with -inf; exp of -1e9 below any score is exactly 0 in float32 too, and a finite
 * value keeps backends that assume finite inputs safe).
 */
export function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  return tf.tensor2d(m, [T, T]); // [T,T]
}

/**
 * Multi-head self-attention with its output projection (`${prefix}.attn.qkv`, `.attn.proj`).
 * x: [B,T,D] -> [B,T,D]; `mask` [T,T] is added to the scores (causalMask for the text tower).
 */
export function attention(m: LinearModule, prefix: string, x: tf.Tensor3D, heads: number, opts: ForwardOptions, mask?: tf.Tensor2D): tf.Tensor3D {
  const [B, T, D] = x.shape;
  const hd = D / heads;
  // Split q, k, v before the head transpose: timm's 5-D [B,T,3,H,hd] -> [3,B,H,T,hd] has no
  // fast path on wasm (it cost more than all of the block's matmuls); the split is a block copy.
  const qkv = m.linear(`${prefix}.attn.qkv`, x.reshape([B * T, D]), opts).reshape([B * T, 3, D]); // [B*T,3,D]
  const [q, k, v] = tf.unstack(qkv, 1).map((t) => t.reshape([B, T, heads, hd]).transpose([0, 2, 1, 3]) as tf.Tensor4D); // each [B,H,T,hd]
  let scores: tf.Tensor4D = tf.matMul(tf.mul(q, 1 / Math.sqrt(hd)), k, false, true); // [B,H,T,T]
  if (mask) scores = tf.add(scores, mask); // [B,H,T,T]
  const o = tf.matMul(tf.softmax(scores), v) // [B,H,T,hd]
    .transpose([0, 2, 1, 3])
    .reshape([B * T, D]) as tf.Tensor2D; // [B*T,D]
  return m.linear(`${prefix}.attn.proj`, o, opts).reshape([B, T, D]);
}

/** `${prefix}.mlp.fc1` -> activation -> `${prefix}.mlp.fc2`. x: [B,T,D] -> [B,T,D]. */
export function mlp(m: LinearModule, prefix: string, x: tf.Tensor3D, act: Activation, opts: ForwardOptions): tf.Tensor3D {
  const [B, T, D] = x.shape;
  const h = activation(act, m.linear(`${prefix}.mlp.fc1`, x.reshape([B * T, D]), opts)) as tf.Tensor2D; // [B*T,Hm]
  return m.linear(`${prefix}.mlp.fc2`, h, opts).reshape([B, T, D]);
}

export interface BlockSpec {
  heads: number;
  act: Activation;
  /** Additive attention mask [T,T], e.g. causalMask(T). */
  mask?: tf.Tensor2D;
}

/** One pre-norm block (`${prefix}.norm1`, `.attn.*`, `.norm2`, `.mlp.*`): two residual lines. x: [B,T,D]. */
export function residualBlock(m: LinearModule, prefix: string, x: tf.Tensor3D, spec: BlockSpec, opts: ForwardOptions): tf.Tensor3D {
  x = tf.add(x, attention(m, prefix, m.layerNorm(`${prefix}.norm1`, x) as tf.Tensor3D, spec.heads, opts, spec.mask)); // [B,T,D]
  return tf.add(x, mlp(m, prefix, m.layerNorm(`${prefix}.norm2`, x) as tf.Tensor3D, spec.act, opts)); // [B,T,D]
}

/**
 * Rows of a matrix: table [N,W], rows int32 [M] -> [M,W] (an embedding lookup). Differentiable
 * in `table` on every backend: tf.gather's own gradient needs UnsortedSegmentSum, which the wasm
 * backend lacks; scatterND sums repeated rows the same way.
 */
export function gatherRows(table: tf.Tensor2D, rows: tf.Tensor1D): tf.Tensor2D {
  const [n, w] = table.shape;
  const op = customOp<[tf.Tensor]>((t, save) => {
    save([rows]);
    return {
      value: tf.gather(t, rows), // [M,W]
      gradFunc: (dy, [r]) => [tf.scatterND(tf.expandDims(r, 1), dy, [n, w])], // [N,W]
    };
  });
  return op(table) as tf.Tensor2D;
}
