// Run configs are checked strictly (a typo is an error naming it), variants merge predictably,
// and every recipe of Paper A is a valid config at every preset.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ExperimentConfig, mergeConfig, validateConfig } from "../../src/studies/config";
import { ConfigError } from "../../src/studies/schema";
import { expand } from "../../src/studies/sweep";
import * as paperA from "../../src/studies/paper-a";
import { PRESETS } from "../../src/studies/presets";

const base = (): ExperimentConfig => paperA.recipe("laptop");

/** Sets a dotted path on a copy of the laptop recipe. */
function edit(path: string, value: unknown): unknown {
  const c = structuredClone(base()) as unknown as Record<string, unknown>;
  const keys = path.split(".");
  let o = c;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys[keys.length - 1]] = value;
  return c;
}

interface BadCase {
  name: string;
  config: unknown;
  error: RegExp;
}

const BAD: BadCase[] = [
  { name: "unknown top-level key", config: edit("trian", {}), error: /^x: trian: unknown key \(known here: name, seed, data, model, strategy, train, eval, retention\)$/ },
  { name: "misspelled strategy kind", config: edit("strategy", { kind: "lorra", rank: 4 }), error: /strategy\.kind: 'lorra' is not one of full, top-k, linear, lora, selective-lora, block-expansion/ },
  { name: "unknown strategy key", config: edit("strategy", { kind: "lora", rnk: 4 }), error: /strategy\.rnk: unknown key/ },
  { name: "missing LoRA rank", config: edit("strategy", { kind: "lora" }), error: /strategy\.rank: missing/ },
  { name: "unknown dataset", config: edit("data.train", { name: "cifar-10", split: "train" }), error: /data\.train\.name: 'cifar-10' is not one of cifar10-jpeg, cifar10, cifar100, mnist, fashion-mnist/ },
  { name: "bad split", config: edit("data.test.split", "val"), error: /data\.test\.split: 'val' is not one of train, test/ },
  { name: "perClass 0", config: edit("data.train.perClass", 0), error: /data\.train\.perClass: expected a positive integer, got 0/ },
  { name: "optimizer without lr", config: edit("train.optimizer", { name: "sgd", momentum: 0.9 }), error: /train\.optimizer\.lr: missing/ },
  { name: "negative learning rate", config: edit("train.optimizer.lr", -1), error: /train\.optimizer\.lr: expected a positive number, got -1/ },
  { name: "unknown optimizer", config: edit("train.optimizer", { name: "adam", lr: 1 }), error: /train\.optimizer\.name: 'adam' is not one of sgd, adamw/ },
  { name: "schedule typo", config: edit("train.schedule.kind", "cosin"), error: /train\.schedule\.kind: 'cosin' is not one of cosine, constant/ },
  { name: "transform typo", config: edit("data.trainTransform.flip", "yes"), error: /data\.trainTransform\.flip: expected true or false, got 'yes'/ },
  { name: "ViT field typo", config: edit("model.vit.widht", 64), error: /model\.vit\.widht: unknown key/ },
  { name: "retention step beyond training", config: edit("retention.steps", [0, 600]), error: /retention\.steps: step 600 beyond train\.steps 500/ },
  { name: "retention without a bank", config: edit("retention.bank", undefined), error: /retention\.bank: missing/ },
  { name: "not an object", config: 42, error: /config: expected an object, got 42/ },
];

for (const c of BAD) {
  test(`config rejected: ${c.name}`, () => {
    assert.throws(() => validateConfig(c.config, "x"), (e: unknown) => e instanceof ConfigError && c.error.test(e.message));
  });
}

test("every Paper A recipe and study variant is a valid config at every preset", () => {
  for (const preset of PRESETS) {
    for (const study of [paperA.curveStudy(preset), paperA.table1Study(preset), paperA.targetsStudy(preset)]) {
      const entries = expand(study.base, study.variants);
      assert.ok(entries.length > 0);
      assert.equal(new Set(entries.map((e) => e.id)).size, entries.length, `${preset}: every run of a study has its own id`);
    }
  }
});

test("mergeConfig: objects merge, arrays replace, a switched kind replaces the whole object", () => {
  const b = base();
  const m = mergeConfig(b, { train: { optimizer: { name: "sgd", lr: 0.05, momentum: 0.9 } }, retention: { steps: [0, 5] } });
  assert.equal(m.train.optimizer.lr, 0.05);
  assert.deepEqual(m.train.schedule, b.train.schedule, "siblings survive");
  assert.deepEqual(m.retention!.steps, [0, 5], "arrays replace");
  assert.deepEqual(m.retention!.bank, b.retention!.bank);
  const lora = mergeConfig(b, { strategy: { kind: "lora", rank: 4 } });
  assert.deepEqual(lora.strategy, { kind: "lora", rank: 4 }, "no key of the full strategy (freshHead) survives a kind switch");
  const sameKind = mergeConfig(b, { strategy: { kind: "full", freshHead: { seed: 3 } } });
  assert.deepEqual(sameKind.strategy, { kind: "full", freshHead: { classes: 5, seed: 3 } });
  const mnist = mergeConfig(b, { data: { train: { name: "mnist", split: "train", size: 32 } } });
  assert.deepEqual(mnist.data.train, { name: "mnist", split: "train", size: 32 }, "a new dataset name drops the old one's classes");
  assert.equal(mergeConfig(b, { name: "renamed" }).name, "renamed", "the top-level name is a field, not a tag");
  assert.deepEqual(b, base(), "the base is not modified");
});

test("expand: tags stay out of the config, names carry the seed, ids are stable", () => {
  const b = base();
  const [a, c] = expand(b, [{ tags: { method: "x" }, seed: 1 }, { seed: 2, name: "other" }]);
  assert.equal(a.config.name, `${b.name}-s1`);
  assert.equal(c.config.name, "other-s2");
  assert.ok(!("tags" in a.config));
  assert.deepEqual(a.tags, { method: "x" });
  assert.equal(expand(b, [{ tags: { method: "renamed tag" }, seed: 1 }])[0].id, a.id, "tags do not change the run id");
  assert.throws(() => expand(b, [{ strategy: { kind: "lorra" } } as never]), /sweep variant 0: strategy\.kind: 'lorra'/);
});
