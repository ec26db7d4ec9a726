// `study reproduce`: every notebooks/NN-*.ipynb in order at one preset, then one summary table.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "../command";
import { opt, parseArgs } from "../command";
import { isPreset, Preset, PRESETS } from "../../notebook/layout";
import { formatFailure, runNotebook } from "../../notebook/runner";
import { REPO_ROOT } from "../../ground/root";
import { writeResults } from "./results";

/** The study notebooks, `NN-name.ipynb`, in numeric order. */
export function studyNotebooks(dir = path.join(REPO_ROOT, "notebooks")): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{2}-.+\.ipynb$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

interface Row {
  notebook: string;
  status: "ok" | "FAILED" | "skipped";
  seconds: string;
  output: string;
}

function table(rows: Row[]): string {
  const cols: (keyof Row)[] = ["notebook", "status", "seconds", "output"];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === 2 ? v.padStart(w[i]) : v.padEnd(w[i]))).join("  ").trimEnd();
  return [line(cols), line(w.map((n) => "-".repeat(n))), ...rows.map((r) => line(cols.map((c) => r[c])))].join("\n");
}

export const command: Command = {
  summary: "run every notebooks/NN-*.ipynb in order at a preset and print a summary table",
  usage: `usage: study reproduce [--preset smoke|laptop|paper] [--only 00,02] [--keep-going]

  --preset P     preset for every notebook (default laptop); outputs go to figures/<name>/
                 (runs/smoke/<name>/ at smoke), each beside its figures
  --only N,...   run only the notebooks with these numbers
  --keep-going   continue after a failing notebook (default: stop, later ones are skipped)

At the laptop and paper presets it then writes README.md's Results section from figures/ (study results).`,
  async run(argv) {
    const args = parseArgs(argv, ["keep-going"]);
    const p = opt(args, "preset", "laptop")!;
    if (!isPreset(p)) throw new Error(`--preset ${p}: use one of ${PRESETS.join(", ")}`);
    const preset: Preset = p;
    const only = opt(args, "only")?.split(",").map((s) => s.trim().padStart(2, "0"));
    const keepGoing = opt(args, "keep-going") === "true";
    let notebooks = studyNotebooks();
    if (only) notebooks = notebooks.filter((f) => only.includes(path.basename(f).slice(0, 2)));
    if (notebooks.length === 0) throw new Error(`no notebooks to run in ${path.join(REPO_ROOT, "notebooks")}${only ? ` matching --only ${only.join(",")}` : ""}`);

    const rel = (f: string) => path.relative(process.cwd(), f) || f;
    const rows: Row[] = [];
    let failed = false;
    for (const nb of notebooks) {
      if (failed && !keepGoing) {
        rows.push({ notebook: rel(nb), status: "skipped", seconds: "", output: "" });
        continue;
      }
      console.log(`running ${rel(nb)} (preset ${preset}) ...`);
      const r = await runNotebook({ notebook: nb, preset });
      if (!r.ok) {
        failed = true;
        console.error(formatFailure(r));
      }
      if (r.skipped) console.log(`skipped ${rel(nb)}: ${r.skipped}`);
      rows.push({ notebook: rel(nb), status: r.skipped ? "skipped" : r.ok ? "ok" : "FAILED", seconds: r.seconds.toFixed(1), output: rel(r.out) });
    }
    console.log(`\n${table(rows)}`);
    if (preset !== "smoke") {
      // The README's Results section follows the figures it is computed from.
      const written = writeResults(path.join(REPO_ROOT, "README.md"));
      console.log(`README.md: Results section ${written ? "written from figures/" : "unchanged"}`);
    }
    return failed ? 1 : 0;
  },
};
