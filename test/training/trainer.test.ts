import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { floats } from "../support/read";
import { TinyMlp, toyImages } from "../support/linear-model";
import { tempDir } from "../support/fixtures";
import { memoryImageSet } from "../../src/data/dataset";
import { Batch, DataLoader } from "../../src/data/pipeline";
import { cifarTrain } from "../../src/data/transforms";
import { BatchSource, NonFiniteError, TrainConfig, train } from "../../src/training/trainer";
import { listCheckpoints, removeStaleCheckpointTemps } from "../../src/training/checkpoint";
import type { TrainableModel } from "../../src/model/types";

const S = 4, K = 3;
const toy = toyImages(60, S, K);
const ds = memoryImageSet("toy", toy.pixels, S, S, toy.labels, ["a", "b", "c"]);
const loader = () => new DataLoader(ds, { batchSize: 10, transform: cifarTrain(S, 1), seed: 7, shuffle: true, dropLast: true, workers: 0 });
const full = (m: TinyMlp): TrainableModel => ({ model: m, trainable: [...m.namedVariables().values()], describe: "full" });
/** Every variable's bytes, read back asynchronously (a copy). */
async function weights(m: TinyMlp): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of m.namedVariables()) out.set(k, Buffer.from((await floats(v)).buffer));
  return out;
}

/** Wraps a source and fails when asked for batch `at` (a simulated crash). */
const crashAt = (src: BatchSource, at: number): BatchSource => ({
  async *batches(from, to) {
    for await (const b of src.batches(from, to)) {
      if (b.step === at) throw new Error("simulated crash");
      yield b;
    }
  },
});

forEachBackend("trainer", () => {
  for (const optimizer of [{ name: "sgd", lr: 0.05, momentum: 0.9 }, { name: "adamw", lr: 0.01, weightDecay: 0.05 }] as const) {
    test(`${optimizer.name}: resume from a checkpoint gives bit-identical final weights`, async () => {
      const dir = tempDir("trainer-resume");
      const cfg: TrainConfig = { steps: 9, optimizer, schedule: { kind: "cosine", warmupSteps: 2 }, clipGradNorm: 0.5, checkpointEvery: 2, logEvery: 1 };
      const a = new TinyMlp(S, K, 8, 1);
      const ra = await train(full(a), loader(), cfg, { checkpointDir: path.join(dir, "a"), progress: "off" });
      assert.equal(ra.resumedFrom, null);

      const b = new TinyMlp(S, K, 8, 1);
      await assert.rejects(train(full(b), crashAt(loader(), 5), cfg, { checkpointDir: path.join(dir, "b"), progress: "off" }), /simulated crash/);
      assert.deepEqual(listCheckpoints(path.join(dir, "b")).map((c) => c.step), [2, 4]);
      const c = new TinyMlp(S, K, 8, 99); // different init: everything must come from the checkpoint
      const rc = await train(full(c), loader(), cfg, { checkpointDir: path.join(dir, "b"), progress: "off" });
      assert.equal(rc.resumedFrom, 4);
      const wa = await weights(a), wc = await weights(c);
      for (const [k, v] of wa) assert.ok(v.equals(wc.get(k)!), `${k} differs after resume`);
      const fresh = new TinyMlp(S, K, 8, 1);
      assert.ok(!(await weights(fresh)).get("fc1.weight")!.equals(wa.get("fc1.weight")!), "training changed the weights");
      fresh.dispose();
      [a, b, c].forEach((m) => m.dispose());
    });
  }

  test("tensor count stays flat across steps; loss goes down; snapshots kept, periodic pruned", async () => {
    const dir = tempDir("trainer-flat");
    const m = new TinyMlp(S, K, 16, 2);
    const records: Record<string, unknown>[] = [];
    const r = await train(full(m), loader(), {
      steps: 30, optimizer: { name: "sgd", lr: 0.1, momentum: 0.9 }, schedule: { kind: "constant", warmupSteps: 0 },
      saveAt: [0, 1, 2, 5, 10], checkpointEvery: 4, keepCheckpoints: 1, evalEvery: 10, logEvery: 5,
    }, {
      checkpointDir: dir, progress: "off",
      hooks: { onMetrics: (x) => records.push(x), evaluate: async (step) => ({ probe: step * 2 }) },
    });
    assert.equal(new Set(r.numTensors).size, 1, `tensor count changed: ${r.numTensors}`);
    assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [0, 1, 2, 5, 10, 28, 30]);
    assert.ok(r.history.at(-1)!.loss < r.history[0].loss * 0.7, `loss ${r.history[0].loss} -> ${r.history.at(-1)!.loss}`);
    assert.deepEqual(records.filter((x) => x.kind === "eval").map((x) => x.probe), [0, 20, 40, 60]);
    assert.deepEqual(records.filter((x) => x.kind === "train").map((x) => x.step), [5, 10, 15, 20, 25, 30]);
    m.dispose();
  });

  test("NaN/Inf guard stops with a clear error, keeps the last good checkpoint, leaves weights finite", async () => {
    const dir = tempDir("trainer-nan");
    const m = new TinyMlp(S, K, 8, 3);
    const before = tf.memory().numTensors;
    const poisoned: BatchSource = {
      async *batches(from, to) {
        for await (const b of loader().batches(from, to)) {
          if (b.step === 3) yield { ...b, x: b.x.map(() => NaN) } as Batch;
          else yield b;
        }
      },
    };
    await assert.rejects(
      train(full(m), poisoned, { steps: 6, optimizer: { name: "sgd", lr: 0.1, momentum: 0.9 }, schedule: { kind: "constant", warmupSteps: 0 }, checkpointEvery: 2 }, { checkpointDir: dir, progress: "off" }),
      (e: unknown) => e instanceof NonFiniteError && e.step === 3 && /update 4: the loss \(NaN\) is not finite.*last good checkpoint is .*step-0000002/.test(e.message),
    );
    for (const v of m.namedVariables().values()) assert.ok((await floats(v)).every(Number.isFinite));
    assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [2]);
    assert.equal(tf.memory().numTensors, before, "the stopped run's optimizer slots and batch are freed");
    m.dispose();
  });

  test("the model's regularizer is added to the loss and reported", async () => {
    const m = new TinyMlp(S, K, 8, 4);
    const base = await train(full(m), loader(), { steps: 1, optimizer: { name: "sgd", lr: 0, momentum: 0 }, schedule: { kind: "constant", warmupSteps: 0 }, logEvery: 1 }, { progress: "off" });
    const withReg = await train({ ...full(m), regularizer: () => tf.scalar(0.25) }, loader(), { steps: 1, optimizer: { name: "sgd", lr: 0, momentum: 0 }, schedule: { kind: "constant", warmupSteps: 0 }, logEvery: 1 }, { progress: "off" });
    assert.ok(Math.abs(withReg.history[0].loss - base.history[0].loss - 0.25) < 1e-5);
    assert.equal(withReg.history[0].reg, 0.25);
    m.dispose();
  });
});

test("checkpoint folders are complete or absent (state.json last, atomic rename)", () => {
  const dir = tempDir("trainer-partial");
  fs.mkdirSync(path.join(dir, "step-0000007"));
  fs.writeFileSync(path.join(dir, "step-0000007", "weights.safetensors"), "partial");
  fs.mkdirSync(path.join(dir, ".step-0000009.123.tmp"));
  // What a process killed while deleting a checkpoint folder could leave: state.json, no weights.
  fs.mkdirSync(path.join(dir, "step-0000004"));
  fs.writeFileSync(path.join(dir, "step-0000004", "state.json"), "{}");
  assert.deepEqual(listCheckpoints(dir), []);
});

test("what dead writers left in a checkpoint folder is removed; a live writer's is not", () => {
  const dir = tempDir("trainer-stale");
  const dead = spawnSync(process.execPath, ["-e", "process.pid"]).pid!; // a pid that has exited
  const names = [`.step-0000002.${dead}.tmp`, `.step-0000002.${dead}.tmp.old`, `.step-0000004.${dead}.del`, `.step-0000006.${process.pid}.tmp`, `.step-0000008.${process.ppid}.del`, "step-0000010"];
  for (const n of names) fs.mkdirSync(path.join(dir, n));
  assert.deepEqual(removeStaleCheckpointTemps(dir).sort(), names.slice(0, 3).sort());
  assert.deepEqual(fs.readdirSync(dir).sort(), names.slice(3).sort());
});

forEachBackend("trainer with the ViT", () => {
  test("resume is bit-exact for a small ViT with AdamW, warm-up and clipping", async () => {
    const { createViT } = await import("../../src/model/vit");
    const { vitConfig } = await import("../../src/model/config");
    const cfgVit = vitConfig({ imageSize: 4, patchSize: 2, inChannels: 3, width: 8, depth: 2, heads: 2, numClasses: K });
    const dir = tempDir("trainer-vit");
    const cfg: TrainConfig = { steps: 6, optimizer: { name: "adamw", lr: 5e-3, weightDecay: 0.05 }, schedule: { kind: "cosine", warmupSteps: 2 }, clipGradNorm: 1, checkpointEvery: 2 };
    const fullTm = (m: ReturnType<typeof createViT>): TrainableModel => ({ model: m, trainable: [...m.namedVariables().values()], describe: "full" });
    const a = createViT(cfgVit, { seed: 1 });
    await train(fullTm(a), loader(), cfg, { checkpointDir: path.join(dir, "a"), progress: "off" });
    const b = createViT(cfgVit, { seed: 1 });
    await assert.rejects(train(fullTm(b), crashAt(loader(), 3), cfg, { checkpointDir: path.join(dir, "b"), progress: "off" }), /simulated crash/);
    const c = createViT(cfgVit, { seed: 2 });
    const r = await train(fullTm(c), loader(), cfg, { checkpointDir: path.join(dir, "b"), progress: "off" });
    assert.equal(r.resumedFrom, 2);
    const va = a.namedVariables(), vc = c.namedVariables();
    for (const [k, v] of va) assert.ok(Buffer.from((await floats(v)).buffer).equals(Buffer.from((await floats(vc.get(k)!)).buffer)), `${k} differs`);
    [a, b, c].forEach((m) => m.dispose());
  });

  test("resume is bit-exact with LoRA dropout (the masks are drawn from the step, not from a stream)", async () => {
    const { createViT } = await import("../../src/model/vit");
    const { vitConfig } = await import("../../src/model/config");
    const { applyStrategy } = await import("../../src/adapters/strategies");
    const cfgVit = vitConfig({ imageSize: 4, patchSize: 2, inChannels: 3, width: 8, depth: 2, heads: 2, numClasses: K });
    const dir = tempDir("trainer-lora-dropout");
    const cfg: TrainConfig = { steps: 6, optimizer: { name: "sgd", lr: 0.5, momentum: 0.9 }, schedule: { kind: "constant", warmupSteps: 0 }, checkpointEvery: 2 };
    const make = () => applyStrategy(createViT(cfgVit, { seed: 1 }), { kind: "lora", rank: 2, dropout: 0.5, seed: 3 });
    const a = make();
    await train(a, loader(), cfg, { checkpointDir: path.join(dir, "a"), progress: "off" });
    const b = make();
    await assert.rejects(train(b, crashAt(loader(), 3), cfg, { checkpointDir: path.join(dir, "b"), progress: "off" }), /simulated crash/);
    const c = make();
    const r = await train(c, loader(), cfg, { checkpointDir: path.join(dir, "b"), progress: "off" });
    assert.equal(r.resumedFrom, 2);
    const va = a.model.namedVariables(), vc = c.model.namedVariables();
    for (const v of a.trainable) {
      const k = [...va].find(([, x]) => x === v)![0];
      assert.ok(Buffer.from((await floats(v)).buffer).equals(Buffer.from((await floats(vc.get(k)!)).buffer)), `${k} differs`);
    }
    [a, b, c].forEach((tm) => tm.model.dispose());
  });
});
