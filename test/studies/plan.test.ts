// What a sweep will cost is known from the configs alone, also at the paper preset where no input
// file exists here; and the paper preset fails fast with one message naming every missing input.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as paperA from "../../src/studies/paper-a";
import { plan, planTotals, sweep } from "../../src/studies/sweep";
import { runCost, splitSize } from "../../src/studies/plan";
import { MissingInputsError, missingInputs, resolveInput } from "../../src/studies/inputs";
import { expand } from "../../src/studies/sweep";
import { forwardMacs } from "../../src/model/flops";
import { vitConfig } from "../../src/model/config";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "plan-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
// Nothing of the paper's inputs exists at these places.
for (const v of ["STUDY_DINO_WEIGHTS", "STUDY_IMAGENET_DIR", "STUDY_TARGETS_DIR"]) process.env[v] = path.join(tmp, v.toLowerCase());
process.env.STUDY_DATA_DIR = path.join(tmp, "data");
process.env.STUDY_DATA_MIRROR = "";

test("split sizes: official splits, class subsets and perClass", () => {
  const cases: [Parameters<typeof splitSize>[0], number][] = [
    [{ name: "cifar100", split: "train" }, 50_000],
    [{ name: "cifar10-jpeg", split: "test", classes: [5, 6, 7, 8, 9] }, 5_000],
    [{ name: "cifar10-jpeg", split: "train", classes: [0, 1], perClass: 16 }, 32],
    [{ name: "imagenet", root: "x", split: "train" }, 1_281_167],
    [{ name: "mnist", split: "test", perClass: 8 }, 80],
  ];
  for (const [spec, n] of cases) assert.equal(splitSize(spec), n, JSON.stringify(spec));
  assert.ok(Number.isNaN(splitSize({ name: "imagefolder", root: "x", split: "val", size: 32 })), "unknown sizes are NaN, not a guess");
});

test("the paper preset's Table 1 plan: exact trainable counts, compute, no file needed", () => {
  const study = paperA.table1Study("paper", { seeds: [0] });
  const rows = plan(study.base, study.variants).objects() as Array<Record<string, number | string>>;
  const trainable = Object.fromEntries(rows.map((r) => [r.method, r.trainable]));
  // PAPERS.md section 2 (100 classes); LoRA: 36,864 r + 76,900.
  assert.deepEqual(
    [trainable.All, trainable["Top-3"], trainable.Linear, trainable["Block p=1"], trainable["Block p=2"], trainable["Block p=3"], trainable["Block p=4"]],
    [85_875_556, 21_340_516, 76_900, 7_164_772, 14_252_644, 21_340_516, 28_428_388],
  );
  for (const r of [4, 8, 16]) assert.equal(trainable[`LoRA r=${r}`], 36_864 * r + 76_900);
  const all = rows.find((r) => r.method === "All")!;
  const fwd = forwardMacs(vitConfig("vit-base-16", { numClasses: 100 })).macs;
  assert.equal(all.fwd_mmacs_per_image, fwd / 1e6);
  assert.equal(all.train_tmacs, (3 * fwd * 128 * 10_000) / 1e12, "training: 3 x forward x batch x iterations");
  // Evaluation: 21 target passes over the 10k test images, and retention over ImageNet (1.28 M + 50 k) at the end and at the best step.
  assert.equal(all.eval_tmacs, (fwd * (21 * 10_000 + 2 * (1_281_167 + 50_000))) / 1e12);
  const t = planTotals(plan(study.base, study.variants));
  assert.equal(t.runs, rows.length);
  assert.equal(t.finished, 0);
  assert.ok(t.tmacs > 1e5, `the paper's Table 1 is over 100 PMAC (got ${t.tmacs.toFixed(0)} TMAC)`);
});

test("LoRA's unmerged adapters add their MACs; block expansion counts its deeper model", () => {
  const [full, lora, block] = expand(paperA.recipe("laptop"), ["All", "LoRA r=16", "Block p=4"].map((m) => paperA.variant("laptop", m, 0))).map((e) => runCost(e.config));
  const T = 17, D = 64, r = 16, blocks = 4;
  assert.equal(lora.forwardMacs - full.forwardMacs, blocks * 2 * T * r * (D + D), "query and value sites: r (in + out) per token");
  assert.ok(Math.abs(block.forwardMacs / full.forwardMacs - 2) < 0.1, "4 inserted blocks roughly double a 4-block model");
});

test("the paper preset fails fast, naming every missing input, where it comes from and its variable", async () => {
  const study = paperA.table1Study("paper", { seeds: [0] });
  const missing = missingInputs(expand(study.base, study.variants).map((e) => e.config));
  const what = missing.map((m) => m.path);
  assert.ok(what.includes(resolveInput("$STUDY_DINO_WEIGHTS")));
  assert.ok(what.includes(resolveInput("$STUDY_IMAGENET_DIR")));
  assert.ok(what.some((p) => p.endsWith("cifar-100-python.tar.gz")));
  assert.equal(new Set(what).size, what.length, "each input once");
  const t0 = Date.now();
  await assert.rejects(sweep(study.base, study.variants, { root: path.join(tmp, "runs") }), (e: unknown) => {
    assert.ok(e instanceof MissingInputsError);
    const m = (e as Error).message;
    assert.match(m, /^sweep 'a-paper-cifar100' cannot start: 3 inputs are missing on this machine:/);
    assert.match(m, /DINO ViT-B\/16 self-supervised weights \(backbone, no head\)\n\s+\S+study_dino_weights\n/);
    assert.match(m, /https:\/\/dl\.fbaipublicfiles\.com\/dino\/dino_vitbase16_pretrain\/dino_vitbase16_pretrain\.pth/);
    assert.match(m, /point STUDY_DINO_WEIGHTS at it/);
    assert.match(m, /ImageNet-1k.*\n.*\n.*point STUDY_IMAGENET_DIR at it/);
    assert.match(m, /https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-100-python\.tar\.gz \(md5 eb9058c3a382ffc7106e4002c42a8d85\)/);
    return true;
  });
  assert.ok(Date.now() - t0 < 5000, "in seconds");
  assert.ok(!fs.existsSync(path.join(tmp, "runs")), "nothing was started");
});

test("an unknown target is an error naming the known ones (a notebook parameter is not type-checked)", () => {
  assert.throws(() => paperA.targetsStudy("laptop", { targets: ["cifar10-5-9" as paperA.Target] }), /target 'cifar10-5-9': use one of cifar10-5to9, mnist, fashion-mnist, cifar100/);
  assert.throws(() => paperA.curveStudy("laptop", { target: "mnst" as paperA.Target }), /target 'mnst'/);
});
