// `study eval`: top-1 and DINO k-NN of a run's model (final weights or any checkpoint), on the
// run's own data or on other datasets, through the same evaluateModel the notebooks call.
import * as fs from "node:fs";
import * as path from "node:path";
// The heavy modules (tfjs, the studies) load lazily inside run(), so that `study --help` and
// argument errors answer at once.
import type { Command } from "../command";
import { numOpt, opt, parseArgs } from "../command";
import type { BackendChoice } from "../../runtime/backend";
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
    const { cachedDataset, loadRunModel } = require("../../studies/experiment") as typeof import("../../studies/experiment");
    const { validateConfig } = require("../../studies/config") as typeof import("../../studies/config");
    const { evaluateModel } = require("../../evaluation/evaluate") as typeof import("../../evaluation/evaluate");
    const { loadWeights } = require("../../weights/load") as typeof import("../../weights/load");

    let run: import("../../runs/store").Run;
    if (target.endsWith(".json") && fs.existsSync(target)) run = Run.open(validateConfig(JSON.parse(fs.readFileSync(target, "utf8")), target));
    else {
      const dir = fs.existsSync(path.join(target, "config.json")) ? target : path.join(runsRoot(), target);
      run = Run.load(path.basename(dir), path.dirname(dir));
    }
    const config = validateConfig(run.config, `${run.dir}/config.json`);
    await initBackend(opt(args, "backend") ? { prefer: opt(args, "backend") as BackendChoice } : {});
    const step = numOpt(args, "step");
    const weights = opt(args, "weights");
    // --weights: the run's architecture and strategy with that file's tensors; else its final
    // weights, or the checkpoint of --step over the run's initial weights.
    const model = await loadRunModel(run, weights ? "init" : step ?? "final");
    if (weights) await loadWeights(model.namedVariables(), weights);
    const source = weights ?? (step !== undefined ? `${run.id} step ${step}` : path.join(run.dir, "model.safetensors"));
    const only = { knn: args.options.has("knn"), acc: args.options.has("accuracy") };
    const doKnn = only.knn || !only.acc, doAcc = only.acc || !only.knn;
    const bank = await cachedDataset(opt(args, "bank") ? parseDatasetArg(opt(args, "bank")!) : config.data.train);
    const queries = await cachedDataset(opt(args, "queries") ? parseDatasetArg(opt(args, "queries")!) : config.data.test);
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
    return 0;
  },
};
