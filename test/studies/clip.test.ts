// The CLIP study's pieces that do not need the fixture model: configs checked strictly, OOD class
// mapping by name or index, prompt names, and the plan's analytic counts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { memoryImageSet } from "../../src/data/dataset";
import { validateClipConfig } from "../../src/studies/clip/config";
import { oodClassMap, promptNames, promptTemplates } from "../../src/studies/clip/experiment";
import { clipRunCost, textMacs } from "../../src/studies/clip/plan";
import { clipRecipe, clipStudy } from "../../src/studies/paper-b/clip";
import { expand } from "../../src/studies/sweep";
import { clipConfig } from "../../src/model/clip";
import { forwardMacs } from "../../src/model/flops";
import { IMAGENET_CLASSNAMES, IMAGENET_TEMPLATES } from "../../src/evaluation/imagenet-prompts";

const set = (name: string, classes: string[]) => memoryImageSet(name, new Uint8Array(classes.length * 3), 1, 1, Int32Array.from(classes.map((_, i) => i)), classes);

test("CLIP configs: every preset's study is valid; typos and zero-shot training are refused", () => {
  for (const preset of ["smoke", "laptop", "paper"] as const) {
    const s = clipStudy(preset);
    assert.equal(expand(s.base, s.variants).length, 4);
  }
  const base = clipRecipe("smoke");
  assert.throws(() => validateClipConfig({ ...base, strategy: { kind: "lorra", rank: 4 } }, "x"), /x: strategy\.kind: 'lorra' is not one of zero-shot, full, lora, selective-lora/);
  assert.throws(() => validateClipConfig({ ...base, prompts: { classnames: "cifar", templates: "default" } }, "x"), /prompts\.classnames: no form fits 'cifar'/);
  assert.throws(() => validateClipConfig({ ...base, train: { ...base.train, steps: 5 } }, "x"), /'zero-shot' trains nothing, so train\.steps must be 0 \(got 5\)/);
  assert.throws(() => validateClipConfig({ ...base, model: { ...base.model, arch: "ViT-B/17" } }, "x"), /model\.arch: no form fits 'ViT-B\/17'/);
});

test("OOD sets map onto the fine-tuning classes by name (wnids) or by index (ImageNet-V2's folders)", () => {
  const id = set("imagenet", ["n01440764", "n01443537", "n01484850"]);
  assert.deepEqual(oodClassMap(set("r", ["n01484850", "n01440764"]), id), [2, 0]);
  assert.deepEqual(oodClassMap(set("v2", ["0", "2"]), id), [0, 2]);
  assert.throws(() => oodClassMap(set("x", ["n99999999"]), id), /OOD set x: class 'n99999999' is none of imagenet's classes/);
});

test("prompt names and templates", () => {
  assert.deepEqual(promptNames("dataset", set("c", ["cat", "dog"])), ["cat", "dog"]);
  assert.deepEqual(promptNames(["a", "b"], set("c", ["cat", "dog"])), ["a", "b"]);
  assert.throws(() => promptNames("imagenet", set("c", ["cat"])), /'imagenet' class names are the 1000 ImageNet classes, c has 1/);
  assert.equal(promptNames("imagenet", set("in", IMAGENET_CLASSNAMES.map((_, i) => `c${i}`))).length, 1000);
  assert.equal(promptTemplates("imagenet").length, IMAGENET_TEMPLATES.length);
  assert.deepEqual(promptTemplates("default"), ["a photo of a {}."]);
});

test("the plan of the paper's CLIP study: image and text tower MACs, trainable counts", () => {
  const s = clipStudy("paper");
  const [zero, full, lora, sel] = expand(s.base, s.variants).map((e) => clipRunCost(e.config));
  const cfg = clipConfig("ViT-B/16");
  assert.equal(full.forwardMacs, forwardMacs(cfg.vision).macs, "the image tower of ViT-B/16 at 224 px");
  assert.equal(zero.trainMacs, 0);
  assert.equal(full.trainMacs, 3 * (forwardMacs(cfg.vision).macs + textMacs(cfg.text)) * 512 * 25_020);
  // LoRA r=128 on the 6 linear layers of 12 blocks: q,k,v,proj are 768->768, fc1 768->3072, fc2 3072->768.
  const perBlock = 128 * (4 * (768 + 768) + 2 * (768 + 3072));
  assert.equal(lora.trainable, 12 * perBlock);
  assert.equal(sel.trainable, 12 * perBlock + 72, "one score per LoRA block");
  assert.ok(full.trainable > 149e6 && full.trainable < 150e6, `CLIP ViT-B/16 has ~149.6 M parameters (got ${full.trainable})`);
});
