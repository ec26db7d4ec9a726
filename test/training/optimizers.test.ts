import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { AdamW, Sgd } from "../../src/training/optimizers";
import { learningRate } from "../../src/training/schedule";

const P0 = [0.5, -1.25, 2.0, 0.1];
const GRADS = [[0.1, -0.2, 0.3, 0.0], [-0.5, 0.25, 0.0, 1.0], [0.05, 0.05, -0.3, -0.2]];
const LRS = [0.1, 0.05, 0.2];

/** torch.optim.SGD, written out in float64. */
function sgdRef(mu: number, wd: number, nesterov: boolean): number[] {
  const p = [...P0], buf = [0, 0, 0, 0];
  GRADS.forEach((g0, t) => {
    for (let i = 0; i < 4; i++) {
      const g = g0[i] + wd * p[i];
      buf[i] = t === 0 ? g : mu * buf[i] + g;
      p[i] -= LRS[t] * (nesterov ? g + mu * buf[i] : buf[i]);
    }
  });
  return p;
}

/** torch.optim.AdamW (amsgrad off), written out in float64. */
function adamwRef(b1: number, b2: number, eps: number, wd: number): number[] {
  const p = [...P0], m = [0, 0, 0, 0], v = [0, 0, 0, 0];
  GRADS.forEach((g, t) => {
    const step = t + 1, lr = LRS[t];
    for (let i = 0; i < 4; i++) {
      p[i] *= 1 - lr * wd;
      m[i] = m[i] + (g[i] - m[i]) * (1 - b1);
      v[i] = v[i] * b2 + g[i] * g[i] * (1 - b2);
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** step) + eps;
      p[i] -= (lr / (1 - b1 ** step)) * (m[i] / denom);
    }
  });
  return p;
}

async function run(opt: Sgd | AdamW, steps = GRADS.length): Promise<{ p: number[]; v: tf.Variable }> {
  const v = tf.variable(tf.tensor1d(P0));
  for (let t = 0; t < steps; t++) {
    const g = tf.tensor1d(GRADS[t]);
    opt.apply(new Map([["w", v]]), new Map([["w", g]]), LRS[t]);
    g.dispose();
  }
  return { p: Array.from(await v.data()), v };
}

const close = (a: number[], b: number[], tol = 1e-6) => a.every((x, i) => Math.abs(x - b[i]) <= tol * Math.max(1, Math.abs(b[i])));

forEachBackend("optimizers", () => {
  for (const [mu, wd, nesterov] of [[0.9, 0, false], [0.9, 0.01, false], [0.9, 0.0, true], [0, 0, false]] as const) {
    test(`SGD mu=${mu} wd=${wd} nesterov=${nesterov} matches torch.optim.SGD`, async () => {
      const o = new Sgd({ name: "sgd", lr: 0, momentum: mu, weightDecay: wd, nesterov });
      const { p, v } = await run(o);
      const ref = sgdRef(mu, wd, nesterov);
      assert.ok(close(p, ref), `${p} vs ${ref}`);
      assert.ok(!close(p, P0), "parameters moved");
      v.dispose();
      o.dispose();
    });
  }

  test("AdamW matches torch.optim.AdamW (decoupled decay, bias correction)", async () => {
    for (const wd of [0, 0.1]) {
      const o = new AdamW({ name: "adamw", lr: 0, betas: [0.9, 0.999], eps: 1e-8, weightDecay: wd });
      const { p, v } = await run(o);
      const ref = adamwRef(0.9, 0.999, 1e-8, wd);
      assert.ok(close(p, ref, 1e-5), `wd=${wd}: ${p} vs ${ref}`);
      v.dispose();
      o.dispose();
    }
  });

  test("optimizer state restores exactly: 1 step + restore + 2 steps == 3 steps", async () => {
    const full = new AdamW({ name: "adamw", lr: 0, weightDecay: 0.05 });
    const a = await run(full);
    const first = new AdamW({ name: "adamw", lr: 0, weightDecay: 0.05 });
    const v = tf.variable(tf.tensor1d(P0));
    const step = (o: AdamW, t: number) => { const g = tf.tensor1d(GRADS[t]); o.apply(new Map([["w", v]]), new Map([["w", g]]), LRS[t]); g.dispose(); };
    step(first, 0);
    const saved = new Map([...first.state()].map(([k, s]) => [k, s.clone()] as [string, tf.Tensor]));
    const second = new AdamW({ name: "adamw", lr: 0, weightDecay: 0.05 });
    second.load(saved, first.updates);
    step(second, 1);
    step(second, 2);
    assert.deepEqual(Array.from(await v.data()), a.p);
    tf.dispose([...saved.values(), v, a.v]);
    [full, first, second].forEach((o) => o.dispose());
  });
});

test("warm-up + cosine schedule (transformers' get_cosine_schedule_with_warmup)", () => {
  const s = { kind: "cosine" as const, warmupSteps: 10 };
  assert.equal(learningRate(0.1, s, 0, 110), 0);
  assert.ok(Math.abs(learningRate(0.1, s, 5, 110) - 0.05) < 1e-15);
  assert.equal(learningRate(0.1, s, 10, 110), 0.1);
  assert.ok(Math.abs(learningRate(0.1, s, 60, 110) - 0.05) < 1e-12);
  assert.ok(learningRate(0.1, s, 110, 110) < 1e-12);
  assert.equal(learningRate(0.1, { kind: "constant", warmupSteps: 0 }, 77, 110), 0.1);
});

test("forgetting-curve snapshot steps", async () => {
  const { forgettingSteps } = await import("../../src/training/schedule");
  assert.deepEqual(forgettingSteps(10000), [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]);
  assert.deepEqual(forgettingSteps(300), [0, 1, 2, 5, 10, 20, 50, 100, 200, 300]);
});
