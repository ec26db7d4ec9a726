// Named parameters and hookable linear layers: the plumbing the ViT and the CLIP text tower share.
//
// Parameters are tfjs variables keyed by short state-dict names (timm style) in PyTorch layouts
// (Linear [out,in]); adapters (LoRA) attach to a linear layer by name through a LinearHook.
import * as tf from "@tensorflow/tfjs";
import { layerNorm } from "./ops";
import type { ForwardOptions } from "./types";

/** Changes a linear layer's output, e.g. adds a low-rank update. */
export interface LinearHook {
  /** x: the layer's input [M,in]; y: the frozen layer's output [M,out] -> new output [M,out]. */
  apply(x: tf.Tensor2D, y: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D;
}

let moduleCounter = 0;

export abstract class LinearModule {
  /** Base parameters by state-dict name. */
  readonly params = new Map<string, tf.Variable>();
  /** Variables owned by attached adapters (peft-style names), included in namedVariables(). */
  readonly adapterParams = new Map<string, tf.Variable>();
  /** Hooks per linear layer name, applied in insertion order. */
  readonly hooks = new Map<string, LinearHook[]>();
  /** Prefix of this module's tfjs variable names: tfjs names are global and must be unique. */
  readonly uid: string;

  /** `kind` names the module in errors ("ViT has no parameter ..."); `uidPrefix` starts its variable names. */
  protected constructor(private readonly kind: string, uidPrefix: string) {
    this.uid = `${uidPrefix}${++moduleCounter}`;
  }

  /** LayerNorm epsilon of every norm of this module. */
  protected abstract get lnEps(): number;

  /** Creates a tfjs variable owned by this module (name made globally unique). */
  newVariable(name: string, init: tf.Tensor, trainable = true): tf.Variable {
    return tf.variable(init, trainable, `${this.uid}/${name}`);
  }

  /**
   * newVariable from a tensor made only for it, which is then freed: tf.variable shares the
   * initial tensor's data, so a tensor left behind outlives the model's dispose().
   */
  variableFrom(name: string, init: tf.Tensor, trainable = true): tf.Variable {
    const v = this.newVariable(name, init, trainable);
    init.dispose();
    return v;
  }

  /** A base parameter by name; a clear error when it does not exist. */
  p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`${this.kind} has no parameter '${name}'`);
    return v;
  }

  namedVariables(): Map<string, tf.Variable> {
    return new Map([...this.params, ...this.adapterParams]);
  }

  addHook(linear: string, hook: LinearHook): void {
    if (!this.params.has(`${linear}.weight`)) throw new Error(`${this.kind} has no linear layer '${linear}'`);
    this.hooks.set(linear, [...(this.hooks.get(linear) ?? []), hook]);
  }

  removeHook(linear: string, hook: LinearHook): void {
    const rest = (this.hooks.get(linear) ?? []).filter((h) => h !== hook);
    if (rest.length) this.hooks.set(linear, rest);
    else this.hooks.delete(linear);
  }

  /**
   * y = x W^T + b, then the layer's hooks. x: [M,in] -> [M,out].
   * Not tf.fused.matMul: tfjs-backend-wasm 4.22 adds the bias wrongly when transposeB is set
   * (test/model/vit.test.ts checks wasm against cpu).
   */
  linear(name: string, x: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    let y: tf.Tensor2D = tf.matMul(x, this.p(`${name}.weight`), false, true); // [M,out]
    const bias = this.params.get(`${name}.bias`);
    if (bias) y = tf.add<tf.Tensor2D>(y, bias);
    for (const h of this.hooks.get(name) ?? []) y = h.apply(x, y, opts);
    return y;
  }

  /** LayerNorm over the last axis, biased variance as torch.nn.LayerNorm. */
  layerNorm(name: string, x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.p(`${name}.weight`) as tf.Tensor1D, this.p(`${name}.bias`) as tf.Tensor1D, this.lnEps);
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const v of this.adapterParams.values()) v.dispose();
    this.params.clear();
    this.adapterParams.clear();
    this.hooks.clear();
  }
}
