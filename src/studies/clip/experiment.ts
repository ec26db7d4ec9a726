// One CLIP run, from its config to results in the run store (the same store, ids and resume as the
// ViT experiments): load the pretrained model and the tokenizer, prepare the strategy, fine-tune
// with FLYP's contrastive loss (each image against a prompt of its class, the template drawn per
// image from the run's seed and the step), and measure zero-shot top-1 on the in-distribution test
// set every `train.evalEvery` steps (best-on-test and last are both reported), then on the OOD
// sets and the zero-shot retention sets at the last step.
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { ImageModel, ForwardOptions, TrainableModel } from "../../model/types";
import { CLIP, clipConfig, l2Normalize } from "../../model/clip";
import { loadTokenizer, SimpleTokenizer } from "../../model/tokenizer";
import { applyStrategy } from "../../adapters/strategies";
import type { ImageSet } from "../../data/dataset";
import { DataLoader } from "../../data/pipeline";
import { loadCLIP } from "../../weights/clip-load";
import { saveStateDict } from "../../weights/load";
import type { BackendChoice } from "../../runtime/backend";
import { Rng } from "../../ground/rng";
import { zeroShotAccuracy, zeroShotClassifier } from "../../evaluation/zeroshot";
import { DEFAULT_TEMPLATE, IMAGENET_CLASSNAMES, IMAGENET_TEMPLATES } from "../../evaluation/imagenet-prompts";
import { clampLogitScale, clipContrastiveLoss, flypPromptIds } from "../../training/flyp";
import { train } from "../../training/trainer";
import type { ProgressMode } from "../../ground/progress";
import { Run } from "../../runs/store";
import { BestTracker } from "../best";
import { AdapterReport, adapterGates, cachedDataset, inferenceForm, openRun, RunProgress } from "../experiment";
import { resolveInput } from "../inputs";
import { ClassNames, ClipExperimentConfig, EvalSet, Templates, validateClipConfig } from "./config";

export interface ClipRunOptions {
  root?: string;
  backend?: BackendChoice;
  force?: boolean;
  onProgress?: (p: RunProgress) => void;
  progress?: ProgressMode;
}

export interface ClipResults {
  /** In-distribution zero-shot top-1 at the last step, and the best over evaluations at steps > 0. */
  top1: number;
  top1Best: number;
  bestStep: number;
  /** Top-1 per OOD set and per zero-shot retention set, at the last step (by label). */
  ood: Record<string, number>;
  zeroShot: Record<string, number>;
  /** Images each accuracy was scored on: the in-distribution test set, each OOD and zero-shot set (runs stored before have none). */
  testImages?: number;
  images?: { ood: Record<string, number>; zeroShot: Record<string, number> };
  trainSeconds: number;
  steps: number;
  finalTrainLoss: number;
  trainable: number;
  describe: string;
  weights: string;
  /** Selective LoRA: the image tower's gates; every LoRA kind: its inference cost. */
  adapter?: AdapterReport;
}

export interface ClipOutcome {
  run: Run;
  results: ClipResults & { id: string; finishedAt: string };
  reused: boolean;
}

export function promptNames(names: ClassNames, ds: ImageSet): string[] {
  if (names === "dataset") return [...ds.classes];
  if (names === "imagenet") {
    if (ds.classes.length !== IMAGENET_CLASSNAMES.length) throw new Error(`prompts: 'imagenet' class names are the 1000 ImageNet classes, ${ds.name} has ${ds.classes.length}`);
    return [...IMAGENET_CLASSNAMES];
  }
  if (names.length !== ds.classes.length) throw new Error(`prompts: ${names.length} class names for ${ds.name}'s ${ds.classes.length} classes`);
  return [...names];
}

export function promptTemplates(t: Templates): string[] {
  return t === "imagenet" ? [...IMAGENET_TEMPLATES] : t === "default" ? [DEFAULT_TEMPLATE] : [...t];
}

/**
 * For an OOD set (the fine-tuning classes, other images): which of the fine-tuning set's classes
 * each of its classes is, by equal name (ImageNet-R/-A/-Sketch: wnid folders) or by index (folders
 * named 0..999, as ImageNet-V2).
 */
export function oodClassMap(ood: ImageSet, id: ImageSet): number[] {
  return ood.classes.map((c) => {
    const byName = id.classes.indexOf(c);
    if (byName >= 0) return byName;
    const i = /^\d+$/.test(c) ? Number(c) : -1;
    if (i >= 0 && i < id.classes.length) return i;
    throw new Error(`OOD set ${ood.name}: class '${c}' is none of ${id.name}'s classes (by name or index)`);
  });
}

/** CLIP's image tower as the trainer's model (FLYP supplies the loss, so there are no logits). */
class ClipTrainee implements ImageModel {
  constructor(readonly clip: CLIP) {}
  get imageSize(): number { return this.clip.config.vision.imageSize; }
  get inChannels(): number { return this.clip.config.vision.inChannels; }
  get numClasses(): number { return 0; }
  get featureDim(): number { return this.clip.config.embedDim; }
  features(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.clip.encodeImage(x, opts))); // [B,E]
  }
  logits(): tf.Tensor2D {
    throw new Error("CLIP trains with the FLYP loss, not on logits");
  }
  namedVariables(): Map<string, tf.Variable> { return this.clip.namedVariables(); }
  dispose(): void { this.clip.dispose(); }
}

/** The trainable set of a strategy. LoRA kinds adapt the image tower only; its projection stays frozen. */
function prepare(clip: CLIP, config: ClipExperimentConfig) {
  const s = config.strategy;
  const all = clip.namedVariables();
  for (const v of all.values()) v.trainable = false;
  if (s.kind === "zero-shot") return { trainable: [] as tf.Variable[], describe: "zero-shot: nothing trained" };
  if (s.kind === "full") {
    for (const v of all.values()) v.trainable = true;
    return { trainable: [...all.values()], describe: "full fine-tuning (FLYP): both towers and the logit scale" };
  }
  const r = applyStrategy(clip.visual, { ...s, freshHead: undefined });
  const head = new Set([...clip.visual.params].filter(([k]) => k.startsWith("head.")).map(([, v]) => v));
  for (const v of head) v.trainable = false;
  const trainable = r.trainable.filter((v) => !head.has(v));
  return { trainable, describe: `${r.describe.replace(/ \+ head$/, "")} on the image tower (projection frozen)`, adapter: r.adapter, regularizer: r.regularizer };
}

export async function runClipExperiment(input: ClipExperimentConfig, opts: ClipRunOptions = {}): Promise<ClipOutcome> {
  const config = validateClipConfig(input, `run config '${input?.name}'`);
  const opened = await openRun<ClipOutcome["results"]>(config, opts);
  if (opened.done) return { run: opened.run, results: opened.done, reused: true };
  const { run, resumeFrom } = opened;

  const { steps } = config.train;

  const trainSet = await cachedDataset(config.data.train);
  const testSet = await cachedDataset(config.data.test);
  const { model: clip } = await loadCLIP(resolveInput(config.model.init), { config: clipConfig(config.model.arch) });
  const tokenizer: SimpleTokenizer = loadTokenizer(config.model.bpe ? resolveInput(config.model.bpe) : undefined);
  const classnames = promptNames(config.prompts.classnames, trainSet);
  const templates = promptTemplates(config.prompts.templates);
  const p = prepare(clip, config);
  const evalOpts = { transform: config.data.evalTransform, batchSize: config.data.evalBatchSize ?? 256 };
  const report = (step: number, phase: RunProgress["phase"]) => opts.onProgress?.({ step, steps, phase });
  const idTop1 = async () => {
    const cls = zeroShotClassifier(clip, tokenizer, classnames, templates);
    try { return (await zeroShotAccuracy(clip, cls, testSet, evalOpts)).top1; } finally { cls.weights.dispose(); }
  };
  const best = new BestTracker(path.join(run.dir, "best"));
  best.restore(run.metrics(), resumeFrom);
  const trainableVars = new Map([...clip.namedVariables()].filter(([, v]) => p.trainable.includes(v)));
  const tm: TrainableModel = {
    model: new ClipTrainee(clip),
    trainable: p.trainable,
    describe: p.describe,
    regularizer: p.regularizer,
    loss: (x, labels, step) => {
      // One prompt per image; the template is drawn from (seed, step), so a resumed run draws the same.
      const { ids, shape } = flypPromptIds(tokenizer, labels, classnames, templates, new Rng(`${config.seed}/prompts/${step}`));
      return tf.tidy(() => {
        const img = clip.encodeImage(x, { training: true, step }); // [B,E]
        const txt = clip.encodeText(tf.tensor2d(ids, shape, "int32"), { training: true, step }); // [B,E]
        return clipContrastiveLoss(img, txt, clip.logitScale);
      });
    },
    afterStep: config.strategy.kind === "full" ? () => clampLogitScale(clip) : undefined,
  };
  let last: number | undefined;
  const isEval = (s: number) => s === steps || (config.train.evalEvery !== undefined && s % config.train.evalEvery === 0);
  const workers = trainSet.size < 20 * config.data.batchSize ? 0 : 1;
  const loader = new DataLoader(trainSet, { batchSize: config.data.batchSize, transform: config.data.trainTransform, seed: config.seed, shuffle: true, dropLast: true, workers });
  const t0 = Date.now();
  let result;
  try {
    result = await train(tm, loader, config.train, {
      checkpointDir: run.checkpointDir, checkpointMeta: { runId: run.id }, progress: opts.progress,
      hooks: {
        onMetrics: (m) => run.appendMetrics(m),
        onStep: (s) => report(s, "train"),
        evaluate: async (step): Promise<Record<string, number>> => {
          if (!isEval(step)) return {};
          report(step, "target top-1");
          const top1 = await idTop1();
          if (step > 0 && best.offer(step, top1) && trainableVars.size > 0) await best.save(step, trainableVars);
          if (step === steps) last = top1;
          return { testTop1: top1 };
        },
      },
    });
  } finally {
    await loader.close();
  }
  if (last === undefined) throw new Error(`${run.id}: the trainer did not evaluate the final step ${steps}`);
  const final = last;
  const images: NonNullable<ClipResults["images"]> = { ood: {}, zeroShot: {} };
  const evalSet = async (set: EvalSet, ood: boolean): Promise<number> => {
    const ds = await cachedDataset(set.dataset);
    (ood ? images.ood : images.zeroShot)[set.label] = ds.size;
    const names = ood ? oodClassMap(ds, testSet).map((i) => classnames[i]) : promptNames(set.classnames ?? "dataset", ds);
    const cls = zeroShotClassifier(clip, tokenizer, names, promptTemplates(set.templates ?? config.prompts.templates));
    try { return (await zeroShotAccuracy(clip, cls, ds, evalOpts)).top1; } finally { cls.weights.dispose(); }
  };
  const oodTop1: Record<string, number> = {};
  for (const s of config.eval.ood) { report(steps, "retention"); oodTop1[s.label] = await evalSet(s, true); }
  const zs: Record<string, number> = {};
  for (const s of config.eval.zeroShot) { report(steps, "retention"); zs[s.label] = await evalSet(s, false); }
  const weights = "model.safetensors";
  await saveStateDict(path.join(run.dir, weights), clip.namedVariables(), { run: run.id });
  // The inference form last: it merges the adapter into the image tower.
  const adapter = p.adapter ? { ...(await adapterGates(p.adapter, clip.visual)), ...(await inferenceForm(p.adapter, clip.visual, testSet, config.data.evalTransform)) } : undefined;
  const results: ClipResults = {
    top1: final, top1Best: best.step > 0 ? best.top1 : final, bestStep: best.step > 0 ? best.step : steps, ood: oodTop1, zeroShot: zs,
    testImages: testSet.size, images, trainSeconds: (Date.now() - t0) / 1000, steps: result.steps, finalTrainLoss: result.finalLoss,
    trainable: p.trainable.reduce((a, v) => a + v.size, 0), describe: p.describe, weights, adapter,
  };
  run.appendMetrics({ kind: "final", step: result.steps, top1: final, ...Object.fromEntries(Object.entries(oodTop1).map(([k, v]) => [`ood/${k}`, v])), ...Object.fromEntries(Object.entries(zs).map(([k, v]) => [`zeroshot/${k}`, v])) });
  run.writeResults(results as unknown as Record<string, unknown>);
  clip.dispose();
  return { run, results: run.results<ClipOutcome["results"]>()!, reused: false };
}
