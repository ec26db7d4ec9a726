// `study run <notebook.ipynb>`: headless execution through Jupyter with the project kernel.
import * as path from "node:path";
import type { Command } from "../command";
import { numOpt, opt, parseArgs } from "../command";
import { isPreset, Preset, PRESETS } from "../../notebook/layout";
import { Params, parseSetting } from "../../notebook/params";
import { formatFailure, runNotebook } from "../../notebook/runner";

export const command: Command = {
  summary: "execute a notebook headless through Jupyter with parameters (papermill-style)",
  usage: `usage: study run <notebook.ipynb> [--preset smoke|laptop|paper] [--set key=value ...] [--out path.ipynb]
                 [--in-place] [--timeout seconds]

  --preset P       injected as the notebook parameter \`preset\`
  --set key=value  overrides a parameter declared in the cell tagged \`parameters\`; the value is JSON
                   when it parses (3, 0.1, true, "x", [1,2]) and a string otherwise; repeatable
  --out path       output notebook; figures and tables are written beside it. Default:
                   figures/<name>/<name>.ipynb, or runs/smoke/<name>/<name>.ipynb at --preset smoke
  --in-place       allow --out to be the source notebook
  --timeout S      per-cell timeout in seconds (default: none)

A failing cell exits with status 1 and prints the cell's index, source and error.`,
  async run(argv) {
    const args = parseArgs(argv, ["in-place"]);
    if (args.positional.length !== 1) {
      console.error(this.usage);
      return 2;
    }
    const given = opt(args, "preset");
    if (given !== undefined && !isPreset(given)) throw new Error(`--preset ${given}: use one of ${PRESETS.join(", ")}`);
    const preset = given as Preset | undefined;
    const params: Params = {};
    for (const s of args.options.get("set") ?? []) {
      const [k, v] = parseSetting(s);
      params[k] = v;
    }
    if (preset !== undefined && "preset" in params) throw new Error("give the preset either as --preset or as --set preset=..., not both");
    const r = await runNotebook({
      notebook: args.positional[0],
      preset,
      params,
      out: opt(args, "out"),
      inPlace: opt(args, "in-place") === "true",
      timeoutS: numOpt(args, "timeout"),
    });
    const rel = (p: string) => path.relative(process.cwd(), p) || p;
    if (!r.ok) {
      console.error(formatFailure(r));
      return 1;
    }
    if (r.skipped) console.log(`skipped  ${rel(r.notebook)} -> ${rel(r.out)} (${r.seconds.toFixed(1)} s): ${r.skipped}`);
    else console.log(`ok  ${rel(r.notebook)} -> ${rel(r.out)} (${r.seconds.toFixed(1)} s; figures in ${rel(r.figuresDir)})`);
    return 0;
  },
};
