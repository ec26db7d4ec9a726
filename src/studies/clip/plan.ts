// The analytic cost of a CLIP run (see src/studies/plan.ts for the ViT one): image-tower MACs from
// the vision config (unmerged LoRA included), text-tower MACs per prompt from the text config
// (the full 77-token context: an upper bound, the tower stops at the last end token), training
// ~3x forward per image and its prompt, every zero-shot evaluation = its images through the image
// tower and classes x templates prompts through the text tower.
import { clipConfig, clipParameterShapes } from "../../model/clip";
import type { TextConfig } from "../../model/clip-text";
import { forwardMacs } from "../../model/flops";
import { adapterCosts } from "../../adapters/strategies";
import { loraSiteParams, resolveTargets } from "../../adapters/targets";
import { DEFAULT_TARGETS } from "../../adapters/lora";
import { RunCost, splitSize } from "../plan";
import type { ClipExperimentConfig, Templates } from "./config";

/** MACs of one prompt through the text tower (matrix products only, as forwardMacs counts). */
export function textMacs(c: TextConfig): number {
  const L = c.contextLength, D = c.width, H = c.mlpRatio * D;
  const block = L * (3 * D * D + D * D + 2 * D * H) + 2 * L * L * D; // qkv, proj, fc1+fc2; q k^T and attn v
  return c.depth * block + D * c.embedDim; // + text_projection at the end token
}

const templateCount = (t: Templates) => (t === "imagenet" ? 80 : t === "default" ? 1 : t.length);

export function clipRunCost(c: ClipExperimentConfig): RunCost {
  const cfg = clipConfig(c.model.arch);
  const s = c.strategy;
  const img = forwardMacs(cfg.vision, s.kind === "lora" || s.kind === "selective-lora" ? adapterCosts(cfg.vision, s) : []).macs;
  const txt = textMacs(cfg.text);
  const { steps, evalEvery } = c.train;
  const trainMacs = 3 * (img + txt) * c.data.batchSize * steps;
  const classes = (n: number) => n * templateCount(c.prompts.templates) * txt;
  const idClasses = splitSize({ ...c.data.test, perClass: 1 }) || 0; // one image per class = the class count
  const target = img * splitSize(c.data.test) + classes(idClasses);
  const evals = new Set([steps, ...(evalEvery ? Array.from({ length: Math.floor(steps / evalEvery) + 1 }, (_, i) => i * evalEvery) : [])]).size;
  const sets = [...c.eval.ood, ...c.eval.zeroShot].reduce((sum, e) => sum + img * splitSize(e.dataset) + classes(splitSize({ ...e.dataset, perClass: 1 }) || 0), 0);
  const evalMacs = evals * target + sets;
  const sites = s.kind === "lora" || s.kind === "selective-lora" ? resolveTargets(cfg.vision, s.targets ?? DEFAULT_TARGETS, { blocks: s.blocks }) : [];
  const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const trainable =
    s.kind === "zero-shot" ? 0
    : s.kind === "full" ? [...clipParameterShapes(cfg).values()].reduce((a, sh) => a + numel(sh), 0)
    : sites.reduce((a, site) => a + loraSiteParams(site, s.rank), 0) + (s.kind === "selective-lora" ? sites.length : 0);
  return { trainable, forwardMacs: img, trainMacs, evalMacs, totalMacs: trainMacs + evalMacs, passMacs: { target, retention: sets / Math.max(1, c.eval.ood.length + c.eval.zeroShot.length), knn: 0 } };
}
