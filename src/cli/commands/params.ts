// `study params`: trainable parameter count of a strategy, computed from shapes alone (ViT-B/16
// is never allocated). The last line is `trainable: N`.
import { Command, numOpt, opt, parseArgs } from "../command";
import { isVitPreset, vitConfig, ViTConfig } from "../../model/config";
import { forwardMacs } from "../../model/flops";
import { adapterCosts, trainableParams } from "../../adapters/strategies";
import { STRATEGY_KINDS, StrategyKind, StrategySpec } from "../../adapters/spec";

const ALIASES: Record<string, StrategyKind> = {
  all: "full",
  full: "full",
  "top-k": "top-k",
  top: "top-k",
  linear: "linear",
  lora: "lora",
  "selective-lora": "selective-lora",
  selective: "selective-lora",
  "block-expansion": "block-expansion",
  block: "block-expansion",
  expansion: "block-expansion",
};

const USAGE = `usage: study params [--model vit-base-16] [--classes 100] --strategy S [options]

strategies: ${STRATEGY_KINDS.join(", ")} (aliases: all, top, block, selective)
  --k K           top-k: last K blocks + head (default 3); --final-norm also trains the final norm
  --rank R        lora / selective-lora rank (default 8); --alpha A (default R)
  --targets T     lora targets, comma-separated (default query,value)
  --blocks P      block-expansion: P inserted blocks (default 4; official split: 4->3, 3->4, 2->6, 1->11)
  --split M       block-expansion: a copy after every M blocks (instead of --blocks)
  --flops         also print MACs of one forward pass (224 px: one image)

Counts come from parameter shapes only; nothing is allocated. Last line: "trainable: N".`;

const fmt = (n: number) => n.toLocaleString("en-US");

export function specFromArgs(argv: string[]): { config: ViTConfig; spec: StrategySpec; flops: boolean } {
  const args = parseArgs(argv, ["flops", "final-norm"]);
  const model = opt(args, "model", "vit-base-16") as string;
  if (!isVitPreset(model)) throw new Error(`unknown --model '${model}'`);
  const classes = numOpt(args, "classes", 100) as number;
  const config = vitConfig(model, { numClasses: classes });
  const name = opt(args, "strategy");
  if (!name) throw new Error(`--strategy is required\n\n${USAGE}`);
  const kind = ALIASES[name];
  if (!kind) throw new Error(`unknown --strategy '${name}' (known: ${Object.keys(ALIASES).join(", ")})`);
  const rank = numOpt(args, "rank", 8) as number;
  const targets = opt(args, "targets")?.split(",").filter((s) => s.length > 0);
  let spec: StrategySpec;
  switch (kind) {
    case "full":
    case "linear":
      spec = { kind };
      break;
    case "top-k":
      spec = { kind, k: numOpt(args, "k", 3) as number, trainFinalNorm: opt(args, "final-norm") === "true" };
      break;
    case "lora":
    case "selective-lora":
      spec = { kind, rank, alpha: numOpt(args, "alpha"), targets };
      break;
    case "block-expansion": {
      const split = numOpt(args, "split");
      spec = { kind, p: split === undefined ? (numOpt(args, "blocks", 4) as number) : undefined, split };
      break;
    }
  }
  return { config, spec, flops: opt(args, "flops") === "true" };
}

export const command: Command = {
  summary: "trainable parameter count of a fine-tuning strategy (analytic, no allocation)",
  usage: USAGE,
  async run(argv) {
    const { config, spec, flops } = specFromArgs(argv);
    const count = trainableParams(config, spec);
    console.log(`model: ${config.width}-wide, depth ${config.depth}, ${config.heads} heads, ${config.numClasses} classes; strategy: ${JSON.stringify(spec)}`);
    for (const [part, n] of count.parts) console.log(`  ${part.padEnd(40)} ${fmt(n).padStart(14)}`);
    if (flops) {
      const base = forwardMacs(count.config);
      const costs = adapterCosts(count.config, spec);
      const training = forwardMacs(count.config, costs);
      console.log(`forward MACs (1 image): ${fmt(training.macs)} (${(training.flops / 1e9).toFixed(3)} GFLOPs)`);
      if (costs.length) {
        console.log(`  of which unmerged LoRA: ${fmt(training.adapterMacs)}; merged / selective inference form: ${fmt(base.macs)} (= base model)`);
      }
    }
    console.log(`trainable: ${count.total}`);
    return 0;
  },
};
