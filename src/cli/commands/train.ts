// `study train`: runs an experiment config (the same runExperiment the notebooks call), reusing a
// finished run, resuming an unfinished one.
import * as fs from "node:fs";
import * as path from "node:path";
// The heavy modules (tfjs, the studies) load lazily inside run(), so that `study --help` and
// argument errors answer at once.
import type { Command } from "../command";
import { numOpt, opt, parseArgs } from "../command";
import type { BackendChoice } from "../../runtime/backend";
import type { ExperimentConfig } from "../../studies/config";
import { validateConfig } from "../../studies/config";
import { templateConfig } from "../../studies/template";
import { parseDatasetArg, setPath } from "./dataset-args";

const USAGE = `usage: study train <config.json> [options]
       study train --train <dataset> --test <dataset> [options]

Runs (or reuses, or resumes) the run of a config: runs/<name>-<hash>/ with config.json, record.json,
metrics.jsonl, results.json, checkpoints/ and model.safetensors. A finished run is reused unless
--force; an unfinished one resumes from its newest checkpoint.

options:
  --set key.path=value   override any config field (value parsed as JSON when it parses), repeatable
  --name NAME            run name
  --train DATASET        e.g. cifar10-jpeg:train:0,1,2,3,4   (name:split[:classes])
  --test DATASET         e.g. cifar10-jpeg:test:0,1,2,3,4
  --preset NAME          ViT preset (vit-cifar-micro, vit-tiny-16, ...)
  --steps N  --lr X  --batch-size N  --warmup N  --seed N  --optimizer sgd|adamw
  --backend NAME         cpu, wasm, webgpu, tfjs-node (default: the chooser's pick)
  --force                start over even if the run exists
  --print-config         print the resolved config and its run id, do nothing else

example: study train configs/source-cifar5.json`;

export function resolveTrainConfig(argv: string[]): { config: ExperimentConfig; args: ReturnType<typeof parseArgs> } {
  const args = parseArgs(argv, ["force", "print-config"]);
  const file = args.positional[0];
  let config: ExperimentConfig;
  if (file) {
    if (!fs.existsSync(file)) throw new Error(`${file}: no such config file`);
    try {
      config = JSON.parse(fs.readFileSync(file, "utf8")) as ExperimentConfig;
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : e})`);
    }
  } else {
    if (!opt(args, "train")) throw new Error("give a config file or at least --train and --test\n\n" + USAGE);
    config = templateConfig();
  }
  const o = config as unknown as Record<string, unknown>;
  const name = opt(args, "name");
  if (name) config.name = name;
  const tr = opt(args, "train");
  if (tr) config.data.train = parseDatasetArg(tr);
  const te = opt(args, "test");
  if (te) config.data.test = parseDatasetArg(te);
  const preset = opt(args, "preset");
  if (preset) config.model.preset = preset as ExperimentConfig["model"]["preset"];
  const num = (k: string, p: string) => { const v = numOpt(args, k); if (v !== undefined) setPath(o, p, v); };
  num("steps", "train.steps");
  num("lr", "train.optimizer.lr");
  num("batch-size", "data.batchSize");
  num("warmup", "train.schedule.warmupSteps");
  num("seed", "seed");
  const optName = opt(args, "optimizer");
  if (optName === "sgd") config.train.optimizer = { name: "sgd", lr: config.train.optimizer.lr, momentum: 0.9 };
  else if (optName === "adamw") config.train.optimizer = { name: "adamw", lr: config.train.optimizer.lr, weightDecay: 0.05 };
  else if (optName) throw new Error(`--optimizer must be sgd or adamw, got '${optName}'`);
  for (const s of args.options.get("set") ?? []) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new Error(`--set expects key.path=value, got '${s}'`);
    const raw = s.slice(eq + 1);
    let value: unknown = raw;
    try { value = JSON.parse(raw); } catch { /* a plain string */ }
    setPath(o, s.slice(0, eq), value);
  }
  return { config: validateConfig(config, file ?? "the flags' config"), args };
}

export const command: Command = {
  summary: "train a model from a run config (reuses finished runs, resumes unfinished ones)",
  usage: USAGE,
  async run(argv) {
    const { config, args } = resolveTrainConfig(argv);
    const { runId } = require("../../runs/store") as typeof import("../../runs/store");
    if (args.options.has("print-config")) {
      console.log(JSON.stringify(config, null, 2));
      console.log(`run id: ${runId(config)}`);
      return 0;
    }
    const { runExperiment } = require("../../studies/experiment") as typeof import("../../studies/experiment");
    const backend = opt(args, "backend") as BackendChoice | undefined;
    const { run, results, reused } = await runExperiment(config, { force: args.options.has("force"), backend });
    console.log(`${reused ? "reused finished run" : "finished run"} ${run.id} (${path.relative(process.cwd(), run.dir) || "."})`);
    const knn = results.knn ? " " + Object.entries(results.knn).map(([k, v]) => `${k} ${(100 * v).toFixed(2)}`).join(" ") : "";
    console.log(`top1 ${(100 * results.top1).toFixed(2)}${knn}`);
    return 0;
  },
};
