// SGD with momentum and AdamW over explicit tf.Variables, with PyTorch's update rules (torch.optim
// single-tensor path) and state that can be checkpointed and restored exactly. tfjs's own
// optimizers have no decoupled weight decay and no inspectable state, hence these.
import * as tf from "@tensorflow/tfjs";

export interface SgdConfig {
  name: "sgd";
  lr: number;
  momentum: number;
  /** L2 penalty added to the gradient (PyTorch `weight_decay` for SGD). */
  weightDecay?: number;
  nesterov?: boolean;
}

export interface AdamWConfig {
  name: "adamw";
  lr: number;
  /** PyTorch defaults: [0.9, 0.999], 1e-8, 0.01. */
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export type OptimizerConfig = SgdConfig | AdamWConfig;

export interface Optimizer {
  readonly config: OptimizerConfig;
  /** Updates performed so far (AdamW's bias correction uses it). */
  readonly updates: number;
  /** One update with learning rate `lr`; grads keyed like the variables map. */
  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void;
  /** State tensors by `<variable>/<slot>` (for checkpoints). */
  state(): Map<string, tf.Variable>;
  /** Restores state written by `state()` and the update count. */
  load(state: Map<string, tf.Tensor>, updates: number): void;
  dispose(): void;
}

abstract class Base implements Optimizer {
  protected slots = new Map<string, tf.Variable>();
  updates = 0;
  constructor(readonly config: OptimizerConfig) {}

  protected slot(varName: string, slot: string, like: tf.Tensor): tf.Variable {
    const key = `${varName}/${slot}`;
    let v = this.slots.get(key);
    if (!v) {
      // tf.variable shares the data of the tensor it is made from: that tensor is disposed here,
      // or it would keep the slot's memory after dispose().
      const zeros = tf.zerosLike(like);
      v = tf.variable(zeros, false);
      zeros.dispose();
      this.slots.set(key, v);
    }
    return v;
  }

  abstract apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void;

  state(): Map<string, tf.Variable> {
    return new Map(this.slots);
  }

  load(state: Map<string, tf.Tensor>, updates: number): void {
    for (const [key, t] of state) {
      const cur = this.slots.get(key);
      if (cur) cur.assign(t);
      else this.slots.set(key, tf.variable(t, false)); // shares t's data; the caller may dispose t
    }
    this.updates = updates;
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}

/** torch.optim.SGD: g += wd*p; buf = mu*buf + g (buf = g at the first step); p -= lr*buf (no dampening). */
export class Sgd extends Base {
  constructor(override readonly config: SgdConfig) { super(config); }
  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const { momentum: mu, weightDecay: wd = 0, nesterov = false } = this.config;
    for (const [name, p] of vars) {
      const g0 = grads.get(name);
      if (!g0) continue;
      const buf = mu !== 0 ? this.slot(name, "momentum_buffer", p) : undefined;
      tf.tidy(() => {
        const g = wd !== 0 ? tf.add(g0, tf.mul(p, wd)) : g0;
        let d = g;
        if (buf) {
          // The buffer starts at 0: mu*0 + g is exactly PyTorch's first-step clone of g.
          const b = tf.add(tf.mul(buf, mu), g);
          buf.assign(b);
          d = nesterov ? tf.add(g, tf.mul(b, mu)) : b;
        }
        p.assign(tf.sub(p, tf.mul(d, lr)));
      });
    }
    this.updates++;
  }
}

/** torch.optim.AdamW (amsgrad off): decoupled decay p *= 1 - lr*wd, then the bias-corrected Adam step. */
export class AdamW extends Base {
  constructor(override readonly config: AdamWConfig) { super(config); }
  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const [b1, b2] = this.config.betas ?? [0.9, 0.999];
    const eps = this.config.eps ?? 1e-8;
    const wd = this.config.weightDecay ?? 0.01;
    const t = this.updates + 1;
    const bc1 = 1 - b1 ** t;
    const bc2sqrt = Math.sqrt(1 - b2 ** t);
    const stepSize = lr / bc1;
    for (const [name, p] of vars) {
      const g = grads.get(name);
      if (!g) continue;
      const m = this.slot(name, "exp_avg", p);
      const v = this.slot(name, "exp_avg_sq", p);
      tf.tidy(() => {
        const decayed = wd !== 0 ? tf.mul(p, 1 - lr * wd) : p;
        const m1 = tf.add(m, tf.mul(tf.sub(g, m), 1 - b1)); // exp_avg.lerp_(grad, 1-b1)
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.mul(g, g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v1), bc2sqrt), eps);
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)));
      });
    }
    this.updates++;
  }
}

export function createOptimizer(c: OptimizerConfig): Optimizer {
  switch (c.name) {
    case "sgd": return new Sgd(c);
    case "adamw": return new AdamW(c);
    default: throw new Error(`unknown optimizer '${(c as { name: string }).name}' (sgd, adamw)`);
  }
}
