// `study eval`: top-1 and DINO k-NN of a run's model (final weights or any checkpoint), on the
// run's own data or on other datasets, through the same evaluateModel the notebooks call.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "../command";
import { numOpt, opt, parseArgs } from "../command";
import type { BackendChoice } from "../../runtime/backend";
import type { ExperimentConfig } from "../../training/experiment";
import { parseDatasetArg } from "./dataset-args";

const USAGE = `usage: study eval <run-id | run folder | config.json> [options]

Evaluates a trained model: top-1 of its head on the test set and DINO's weighted k-NN
(bank = train features, queries = test features, cosine similarity, T = 0.07).

options:
  --knn / --accuracy     only one of the two (default: both)
  --step N               weights of checkpoint step N of the run (forgetting curves)
  --weights FILE         weights from a safetensors file instead
  --bank DATASET         k-NN bank (default: the run's train set), e.g. cifar10-jpeg:train:0-4
  --queries DATASET      k-NN queries and accuracy set (default: the run's test set)
  --k 10,20,100,200      neighbour counts     --temperature 0.07
  --batch-size N         --backend NAME       --json (machine-readable output)`;

export const command: Command = {
  summary: "top-1 and weighted k-NN (DINO protocol) of a trained model",
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv, ["knn", "accuracy", "json"]);
    const target = args.positional[0];
    if (!target) throw new Error("name a run id, a run folder or a config file\n\n" + USAGE);
    const { Run, runsRoot } = require("../../runs/store") as typeof import("../../runs/store");
    const { initBackend } = require("../../runtime/backend") as typeof import("../../runtime/backend");
    const { createModel } = require("../../training/experiment") as typeof import("../../training/experiment");
    const { loadDataset } = require("../../data/datasets") as typeof import("../../data/datasets");
    const { evaluateModel } = require("../../evaluation/evaluate") as typeof import("../../evaluation/evaluate");
    const { assignWeights, listCheckpoints, readCheckpoint } = require("../../training/checkpoint") as typeof import("../../training/checkpoint");

    let config: ExperimentConfig;
    let runDir: string | undefined;
    if (target.endsWith(".json") && fs.existsSync(target)) {
      config = JSON.parse(fs.readFileSync(target, "utf8")) as ExperimentConfig;
      const r = Run.open(config);
      runDir = r.dir;
    } else {
      const dir = fs.existsSync(path.join(target, "config.json")) ? target : path.join(runsRoot(), target);
      const r = Run.load(path.basename(dir), path.dirname(dir));
      config = r.config as unknown as ExperimentConfig;
      runDir = r.dir;
    }
    await initBackend(opt(args, "backend") ? { prefer: opt(args, "backend") as BackendChoice } : {});
    const { applyStrategy } = require("../../adapters/strategies") as typeof import("../../adapters/strategies");
    // Base weights from the run's init (a checkpoint holds only the trained variables).
    const base = await createModel(config.model, config.seed);
    // The run's strategy rebuilds its variables (LoRA factors, expanded blocks) before loading.
    const model = applyStrategy(base, config.strategy).model;
    const loadOwn = async (file: string) => {
      const { readSafetensors } = require("../../weights/safetensors") as typeof import("../../weights/safetensors");
      const { loadStateDict } = require("../../weights/load") as typeof import("../../weights/load");
      loadStateDict(model.namedVariables(), (await readSafetensors(file)).tensors, { file });
    };
    const step = numOpt(args, "step");
    const weights = opt(args, "weights");
    let source: string;
    if (weights) {
      const { loadWeights } = require("../../weights/load") as typeof import("../../weights/load");
      await loadWeights(model.namedVariables(), weights);
      source = weights;
    } else if (step !== undefined) {
      const ck = listCheckpoints(path.join(runDir, "checkpoints")).find((c) => c.step === step);
      if (!ck) throw new Error(`${runDir}: no checkpoint of step ${step} (have ${listCheckpoints(path.join(runDir, "checkpoints")).map((c) => c.step).join(", ") || "none"})`);
      const loaded = await readCheckpoint(ck.path);
      const vars = new Map([...model.namedVariables()].filter(([k]) => loaded.weights.has(k)));
      assignWeights(vars, loaded, ck.path);
      loaded.optimizer.forEach((t) => t.dispose());
      source = ck.path;
    } else {
      source = path.join(runDir, "model.safetensors");
      if (!fs.existsSync(source)) throw new Error(`${runDir}: the run has no model.safetensors yet (unfinished?); use --step N or --weights FILE`);
      await loadOwn(source);
    }
    const only = { knn: args.options.has("knn"), acc: args.options.has("accuracy") };
    const doKnn = only.knn || !only.acc, doAcc = only.acc || !only.knn;
    const bank = await loadDataset(opt(args, "bank") ? parseDatasetArg(opt(args, "bank")!) : config.data.train);
    const queries = await loadDataset(opt(args, "queries") ? parseDatasetArg(opt(args, "queries")!) : config.data.test);
    const ks = (opt(args, "k") ?? "10,20,100,200").split(",").map(Number);
    const report = await evaluateModel({
      model, transform: config.data.evalTransform, batchSize: numOpt(args, "batch-size", 256),
      accuracyOn: doAcc && model.numClasses === queries.classes.length ? queries : undefined,
      knn: doKnn ? { bank, queries, ks, temperature: numOpt(args, "temperature", 0.07) } : undefined,
    });
    const out = { weights: source, bank: bank.name, queries: queries.name, ...report };
    if (args.options.has("json")) console.log(JSON.stringify(out, null, 2));
    else {
      console.log(`weights ${source}`);
      if (report.top1 !== undefined) console.log(`top1 ${(100 * report.top1).toFixed(2)} on ${queries.name} (${queries.size} images)`);
      if (report.knn) console.log(`k-NN (bank ${bank.name}, ${bank.size}; queries ${queries.name}, ${queries.size}): ` + Object.entries(report.knn).map(([k, v]) => `${k}-NN ${(100 * v).toFixed(2)}`).join("  "));
    }
    model.dispose();
    if (model !== base) base.dispose();
    return 0;
  },
};
