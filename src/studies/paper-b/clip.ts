// Paper B's CLIP path (its Figure 1): pretrained CLIP ViT-B/16 zero-shot, full fine-tuning with
// FLYP, LoRA and selective LoRA, fine-tuned on ImageNet-1k; in-distribution accuracy, accuracy on
// ImageNet's OOD sets, and zero-shot retention on other classification sets.
//
//   paper   the FLYP recipe (Paper B, arXiv 2501.15377, after FLYP: Goyal et al. 2022): OpenAI CLIP ViT-B/16 from the user's file,
//           AdamW lr 1e-5, weight decay 0.1, batch 512, 10 epochs, cosine with 500 warm-up steps,
//           contrastive loss against class-name prompts (the reference's 80 templates), rank 128.
//   laptop  the same model and recipe on a small ImageNet subset for 100 steps (CPU hours).
//   smoke   the parity fixture's tiny CLIP (32 px) on a few CIFAR-10 images: every code path.
// CHOICES: LoRA and selective LoRA adapt every linear layer of the image tower (the text tower and
// the projections stay frozen; FLYP's full fine-tuning trains both towers); the retention sets
// (CIFAR-10, MNIST, Fashion-MNIST here; the paper does not list its own); TAPS's constants.
// ObjectNet is not included: it needs its own class mapping onto ImageNet's, not implemented.
import type { Figure, Trace } from "../../plotting/figure";
import { TAPS_SCORE_INIT, TAPS_TAU } from "../../adapters/selective";
import type { DatasetSpec } from "../../data/datasets";
import type { TransformSpec } from "../../data/transforms";
import { CLIP_MEAN, CLIP_STD, clipEval } from "../../evaluation/zeroshot";
import type { ClipExperimentConfig, ClipStrategy, EvalSet } from "../clip/config";
import { MissingInputsError, missingInputs } from "../inputs";
import type { Preset } from "../presets";
import { pick } from "../presets";
import { Claim, Rows, UNJUDGED, claim, finished, val, versus } from "../rows";
import { Accuracy, Estimate, Verdict, every, exact, exceeds, groupRows, mean, meanOfSets, relativeLoss, round, scaled, std } from "../stats";
import { expand } from "../sweep";
import type { SweepRow, Variant } from "../sweep";
import { ALL_LINEARS } from "./recipe";
import { runClipParity } from "../../weights/clip-parity";

/** The parity fixture's tiny CLIP (../shared/fixtures/clip-parity/README.md). */
const FIXTURE = "../shared/fixtures/clip-parity";
const TINY = {
  embed_dim: 32, image_resolution: 32, vision_layers: 2, vision_width: 128, vision_patch_size: 8,
  context_length: 77, vocab_size: 49408, transformer_width: 32, transformer_heads: 2, transformer_layers: 2,
};

/**
 * The CLIP path against the reference outputs of the parity fixture's tiny CLIP (weights in
 * OpenAI's naming, features, logits and tokenizer cases), as one line: PASS or FAIL and the
 * largest absolute errors.
 */
export async function fixtureParity(): Promise<string> {
  const p = await runClipParity(`${FIXTURE}/tiny.openai.safetensors`, `${FIXTURE}/tiny.json`);
  const e = (x: number) => x.toExponential(1);
  return `${p.ok ? "PASS" : "FAIL"} image_features=${e(p.imageFeatures.maxAbsErr)} text_features=${e(p.textFeatures.maxAbsErr)} logits_per_image=${e(p.logitsPerImage.maxAbsErr)} tokenizer=${p.tokenizer.passed}/${p.tokenizer.total}`;
}

/** Prompt names of the retention sets (CLIP's own zero-shot evaluation names MNIST's classes by digit). */
const DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];

function clipTrain(size: number): TransformSpec {
  // CHOICE: open_clip's training transform (RandomResizedCrop scale 0.9-1, bicubic), CLIP's mean/std.
  return { kind: "random-resized-crop", size, scale: [0.9, 1], ratio: [3 / 4, 4 / 3], interpolation: "bicubic", flip: false, mean: CLIP_MEAN, std: CLIP_STD };
}

function retentionSets(preset: Preset): EvalSet[] {
  const size = preset === "smoke" ? 32 : 224;
  const take = pick(preset, { smoke: { perClass: 8 }, laptop: { perClass: 100 }, paper: {} });
  const cifar: DatasetSpec = preset === "smoke" ? { name: "cifar10-jpeg", split: "test", ...take } : { name: "cifar10", split: "test", size: 32, ...take };
  const sets: EvalSet[] = [
    { label: "MNIST", dataset: { name: "mnist", split: "test", size, ...take }, classnames: DIGITS, templates: ['a photo of the number: "{}".'] },
    { label: "Fashion-MNIST", dataset: { name: "fashion-mnist", split: "test", size, ...take }, classnames: FASHION },
  ];
  // At smoke CIFAR-10 is the fine-tuning set itself; otherwise a retention set.
  return preset === "smoke" ? sets : [{ label: "CIFAR-10", dataset: cifar, classnames: "dataset" }, ...sets];
}

function oodSets(preset: Preset): EvalSet[] {
  if (preset === "smoke") {
    // A stand-in that runs the OOD code path: the fine-tuning classes, other CIFAR-10 test images.
    return [{ label: "CIFAR-10 (smoke stand-in)", dataset: { name: "cifar10-jpeg", split: "test", perClass: 16 } }];
  }
  const take = preset === "laptop" ? { perClass: 1 } : {};
  const folder = (label: string, env: string): EvalSet => ({ label, dataset: { name: "imagefolder", root: `$${env}`, split: "", size: 224, fit: "shorter-center-crop", interpolation: "bicubic", ...take } });
  return [folder("ImageNet-V2", "STUDY_IMAGENET_V2_DIR"), folder("ImageNet-R", "STUDY_IMAGENET_R_DIR"), folder("ImageNet-A", "STUDY_IMAGENET_A_DIR"), folder("ImageNet-Sketch", "STUDY_IMAGENET_SKETCH_DIR")];
}

/** The zero-shot run of a preset (nothing trained): the reference every method is compared with. */
export function clipRecipe(preset: Preset): ClipExperimentConfig {
  const smoke = preset === "smoke";
  const imagenet = (split: "train" | "val", perClass?: number): DatasetSpec => ({ name: "imagenet", root: "$STUDY_IMAGENET_DIR", split, ...(perClass ? { perClass } : {}) });
  return {
    kind: "clip",
    name: `b-clip-${preset}`,
    seed: 0,
    model: smoke
      ? { arch: TINY, init: `${FIXTURE}/tiny.openai.safetensors`, bpe: `${FIXTURE}/bpe_simple_vocab_16e6.txt.gz` }
      : { arch: "ViT-B/16", init: "$STUDY_CLIP_WEIGHTS" },
    data: {
      train: smoke ? { name: "cifar10-jpeg", split: "train", perClass: 16 } : imagenet("train", preset === "laptop" ? 2 : undefined),
      test: smoke ? { name: "cifar10-jpeg", split: "test", perClass: 8 } : imagenet("val", preset === "laptop" ? 1 : undefined),
      trainTransform: clipTrain(smoke ? 32 : 224), evalTransform: clipEval(smoke ? 32 : 224),
      batchSize: pick(preset, { smoke: 16, laptop: 32, paper: 512 }), evalBatchSize: pick(preset, { smoke: 64, laptop: 64, paper: 256 }),
    },
    prompts: { classnames: smoke ? "dataset" : "imagenet", templates: "imagenet" },
    strategy: { kind: "zero-shot" },
    train: {
      steps: 0, optimizer: { name: "adamw", lr: 1e-5, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 },
      schedule: { kind: "cosine", warmupSteps: pick(preset, { smoke: 1, laptop: 10, paper: 500 }) },
      evalEvery: pick(preset, { smoke: 2, laptop: 50, paper: 2502 }), checkpointEvery: pick(preset, { smoke: 2, laptop: 25, paper: 1000 }), keepCheckpoints: 1,
      logEvery: pick(preset, { smoke: 1, laptop: 5, paper: 50 }),
    },
    eval: { ood: oodSets(preset), zeroShot: retentionSets(preset) },
  };
}

/** Fine-tuning steps (paper: 10 epochs of ImageNet's 1,281,167 images at batch 512). */
export const clipSteps = (preset: Preset) => pick(preset, { smoke: 6, laptop: 100, paper: 25_020 });

export interface ClipStudyOptions {
  seeds?: readonly number[];
  rank?: number;
  /** Selective LoRA's penalty weights (one run each). */
  lambdas?: readonly number[];
}

/** Zero-shot, FLYP full fine-tuning, LoRA and selective LoRA (per lambda), per seed. */
export function clipStudy(preset: Preset, o: ClipStudyOptions = {}): { base: ClipExperimentConfig; variants: Variant<ClipExperimentConfig>[] } {
  const base = clipRecipe(preset);
  const seeds = preset === "smoke" ? (o.seeds ?? [0]).slice(0, 1) : [...(o.seeds ?? [0])];
  const rank = o.rank ?? pick(preset, { smoke: 4, laptop: 128, paper: 128 });
  const steps = clipSteps(preset);
  const lora: ClipStrategy = { kind: "lora", rank, targets: [...ALL_LINEARS] };
  const run = (method: string, strategy: ClipStrategy, seed: number, extra: Record<string, string | number> = {}): Variant<ClipExperimentConfig> => ({
    tags: { method, ...extra }, name: `${base.name}-${method.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`, seed, strategy: { ...strategy, ...(strategy.kind === "lora" || strategy.kind === "selective-lora" ? { seed } : {}) },
    train: { steps },
  });
  return {
    base,
    variants: [
      { tags: { method: "Zero-shot" }, name: `${base.name}-zero-shot`, seed: 0 },
      ...seeds.flatMap((s) => [
        run("FLYP (full)", { kind: "full" }, s),
        run(`LoRA r=${rank}`, lora, s),
        ...(o.lambdas ?? [pick(preset, { smoke: 0.1, laptop: 0.1, paper: 0.1 })]).map((lambda) =>
          run(`Selective LoRA r=${rank} lambda=${lambda}`, { kind: "selective-lora", rank, targets: [...ALL_LINEARS], tau: TAPS_TAU, scoreInit: TAPS_SCORE_INIT, lambda, penaltyStartStep: Math.round(0.2 * steps) }, s, { lambda })),
      ]),
    ],
  };
}

/** One message naming every input of the study missing on this machine, or undefined. */
export function clipInputsMissing(study: ReturnType<typeof clipStudy>): string | undefined {
  const missing = missingInputs(expand(study.base, study.variants).map((e) => e.config));
  const blocking = missing.filter((m) => !m.downloadable);
  return blocking.length ? new MissingInputsError(missing, `the CLIP study (${study.base.name})`).message : undefined;
}

export interface ClipRow {
  method: string;
  seeds: number;
  id_top1: number;
  id_top1_last: number;
  ood_mean: number;
  zeroshot_mean: number;
  /** Relative loss of mean zero-shot accuracy against the pretrained model's, percent. */
  forgetting: number;
  forgetting_std: number;
  /** Standard errors (points) of the zero-shot mean and of forgetting: the sets' binomial noise and the seeds' spread (NaN without image counts). */
  zeroshot_mean_se: number;
  forgetting_se: number;
  id_top1_std: number;
  /** In-distribution test images (NaN for runs stored before they were recorded). */
  test_images: number;
  active_share: number;
  [set: string]: string | number;
}

/** One row per method: ID top-1 (best on test and last), each OOD and retention set, their means, forgetting, with their errors. */
export function clipTable(rows: Rows): ClipRow[] {
  const done = finished(rows);
  const sets = (prefix: string) => [...new Set(done.flatMap((r) => Object.keys(r).filter((k) => k.startsWith(prefix))))];
  const ood = sets("ood:"), zs = sets("zeroshot:");
  const zsMean = (r: SweepRow) => mean(zs.map((k) => val(r, k)));
  // Mean zero-shot accuracy of a method's runs (percent) with its error: each set's binomial noise, the seeds' spread.
  const zsEstimate = (rs: SweepRow[]): Estimate => {
    const perSeed = rs.map((r) => 100 * zsMean(r));
    const accs = zs.map((k) => ({ mean: 100 * mean(rs.map((r) => val(r, k))), std: 0, seeds: 1, n: mean(rs.map((r) => val(r, `zeroshot_images:${k.slice("zeroshot:".length)}`))) }));
    return meanOfSets(accs, { mean: mean(perSeed), std: std(perSeed), seeds: rs.length });
  };
  const zero = done.filter((r) => r.method === "Zero-shot");
  const z0 = zero.length ? zsEstimate(zero) : undefined;
  return groupRows(done, ["method"]).map(({ key, rows: rs }) => {
    const p = (k: string) => round(100 * mean(rs.map((r) => val(r, k))));
    const z = zsEstimate(rs);
    const loss = z0 ? relativeLoss(z0, z) : undefined;
    const f = rs.map((r) => 100 * (1 - zsMean(r) / (z0 ? z0.mean / 100 : NaN)));
    const out: ClipRow = {
      method: String(key.method), seeds: rs.length, id_top1: p("target_top1_best"), id_top1_last: p("target_top1_last"),
      ood_mean: round(100 * mean(rs.map((r) => mean(ood.map((k) => val(r, k)))))), zeroshot_mean: round(z.mean),
      forgetting: round(loss?.mean ?? NaN), forgetting_std: round(std(f)),
      zeroshot_mean_se: round(z.se), forgetting_se: round(loss?.se ?? NaN),
      id_top1_std: round(std(rs.map((r) => 100 * val(r, "target_top1_best")))), test_images: mean(rs.map((r) => val(r, "test_images"))),
      active_share: p("active_share"),
    };
    for (const k of [...ood, ...zs]) out[k] = p(k);
    return out;
  });
}

export function clipFigure(table: readonly ClipRow[]): Figure {
  const bars = (name: string, key: keyof ClipRow, color: string): Trace => ({ type: "bar", name, x: table.map((r) => r.method), y: table.map((r) => r[key] as number), marker: { color } });
  return {
    data: [bars("in-distribution top-1", "id_top1", "#4c78a8"), bars("OOD mean top-1", "ood_mean", "#f58518"), bars("zero-shot retention (mean top-1)", "zeroshot_mean", "#54a24b")],
    layout: { title: "CLIP: in-distribution, OOD and zero-shot retention", barmode: "group", yaxis: { title: "top-1 (%)" }, legend: { orientation: "h", y: -0.25 }, width: 860, height: 480 },
  };
}

/**
 * Paper B's CLIP claims, computed from the table. Forgetting and accuracy differences are judged
 * at two standard errors, as in 02-04: "within noise" where this preset cannot tell.
 */
export function clipClaims(table: readonly ClipRow[]): Claim[] {
  const get = (p: string) => table.find((r) => r.method.startsWith(p));
  const flyp = get("FLYP"), lora = get("LoRA"), sel = get("Selective");
  const loss = (r: ClipRow): Estimate => ({ mean: r.forgetting, std: r.forgetting_std, seeds: r.seeds, se: r.forgetting_se });
  const judged = (...rs: ClipRow[]) => rs.every((r) => Number.isFinite(r.forgetting_se));
  const f = (r?: ClipRow) => (r ? `${r.forgetting.toFixed(2)}%${Number.isFinite(r.forgetting_se) ? ` ± ${(2 * r.forgetting_se).toFixed(2)} (2 SE)` : ""}` : "n/a");
  const text = (ours: string, ...rs: ClipRow[]) => `${ours}${judged(...rs) ? "" : ` ${UNJUDGED}`}`;
  const verdict = (rs: ClipRow[], v: () => Verdict | undefined) => (judged(...rs) ? v() : undefined);
  const id = (r: ClipRow): Accuracy => ({ mean: r.id_top1, std: r.id_top1_std, seeds: r.seeds, n: r.test_images });
  const idCmp = sel && flyp ? versus(id(sel), id(flyp), "FLYP", -1) : undefined;
  return [
    claim("Full fine-tuning (FLYP) forgets: its mean zero-shot accuracy drops", "16.24% lost on average", flyp ? text(`${f(flyp)} lost`, flyp) : "n/a", flyp ? verdict([flyp], () => exceeds(loss(flyp), exact(0))) : undefined),
    claim(
      "Plain LoRA forgets about as much (its loss within a quarter of FLYP's either way)", "17.12% lost on average (FLYP's x 1.05)",
      lora && flyp ? text(`${f(lora)} lost vs FLYP ${f(flyp)}${flyp.forgetting > 0 ? `: x ${(lora.forgetting / flyp.forgetting).toFixed(2)}` : ""}`, lora, flyp) : `${f(lora)} lost`,
      lora && flyp ? verdict([lora, flyp], () => every([exceeds(loss(flyp), exact(0)), exceeds(scaled(loss(flyp), 1.25), loss(lora)), exceeds(loss(lora), scaled(loss(flyp), 0.75))])) : undefined,
    ),
    claim(
      "Selective LoRA forgets less than both", "7.31% less",
      sel && lora && flyp ? text(`${f(sel)} vs LoRA ${f(lora)}, FLYP ${f(flyp)}`, sel, lora, flyp) : "n/a",
      sel && lora && flyp ? verdict([sel, lora, flyp], () => every([exceeds(loss(lora), loss(sel)), exceeds(loss(flyp), loss(sel))])) : undefined,
    ),
    // A count of gates, not an accuracy: no noise to judge.
    claim("with few blocks active", "6.25% of blocks", sel ? `${sel.active_share.toFixed(2)}%` : "n/a", sel ? sel.active_share <= 10 : undefined),
    claim("and in-distribution accuracy close to full fine-tuning's (within 1 point)", "(Figure 1)", idCmp ? `Selective ${idCmp.ours}` : "n/a", idCmp?.holds),
  ];
}
