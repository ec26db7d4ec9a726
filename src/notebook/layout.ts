// Where a notebook run writes, and how the runner tells the kernel: presets, the default output
// notebook, the figures directory, and the environment variables that carry them into the kernel.
import * as path from "node:path";
import { REPO_ROOT } from "../ground/root";
import type { Preset } from "../studies/presets";

export { isPreset, PRESETS } from "../studies/presets";
export type { Preset } from "../studies/presets";

/** Environment variables the runner sets for the kernel (read by `notebook()`). */
export const ENV = {
  /** "1" when executed by `study run`: figures go inline as PNG (HTML/JS is hidden in untrusted notebooks). */
  headless: "STUDY_HEADLESS",
  /** Absolute directory for figures and tables of this run. */
  figuresDir: "STUDY_FIGURES_DIR",
} as const;

/** `notebooks/00-environment.ipynb` -> `00-environment`. */
export function notebookStem(file: string): string {
  return path.basename(file).replace(/\.ipynb$/i, "");
}

/**
 * Default output of `study run`: `figures/<stem>/<stem>.ipynb` (the reference run, beside its
 * figures); at the smoke preset `runs/smoke/<stem>/<stem>.ipynb` so tests never touch `figures/`.
 */
export function defaultOutput(notebookFile: string, preset: Preset | undefined, root = REPO_ROOT): string {
  const stem = notebookStem(notebookFile);
  return preset === "smoke" ? path.join(root, "runs", "smoke", stem, `${stem}.ipynb`) : path.join(root, "figures", stem, `${stem}.ipynb`);
}

/** Figures of a run go beside its output notebook. */
export function figuresDirFor(outputNotebook: string): string {
  return path.dirname(path.resolve(outputNotebook));
}

/**
 * Figures directory of a notebook running in a kernel: the runner's choice when it set one;
 * opened by hand, `figures/<name>/`, or `runs/smoke/<name>/` at the smoke preset.
 */
export function kernelFiguresDir(name: string, preset: Preset, env: NodeJS.ProcessEnv = process.env, root = REPO_ROOT): string {
  const fromRunner = env[ENV.figuresDir];
  if (fromRunner) return path.resolve(fromRunner);
  return preset === "smoke" ? path.join(root, "runs", "smoke", name) : path.join(root, "figures", name);
}
