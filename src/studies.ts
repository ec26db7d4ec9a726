// What study notebooks import for the science: `import { paperA, sweep, plan } from "./src/studies";`
// (a file beside the folder: tslab resolves "./src/studies" to src/studies.js only). Output
// (figures, tables) comes from "./src/notebook".
import * as paperA from "./studies/paper-a";
import * as paperB from "./studies/paper-b";
export { paperA, paperB };
export { sweep, plan, planTotals, expand } from "./studies/sweep";
export type { Variant, Tags, SweepRow, SweepOptions } from "./studies/sweep";
export { curveRows, curveStats, curveFigure } from "./studies/forgetting";
export type { CurveRow, CurvePoint } from "./studies/forgetting";
export { runExperiment, loadRunModel, createModel } from "./studies/experiment";
export type { ExperimentResults, RunOptions } from "./studies/experiment";
export { validateConfig, mergeConfig } from "./studies/config";
export type { ExperimentConfig, RetentionSpec } from "./studies/config";
export { claimsBoth, rowsOf, finished } from "./studies/rows";
export type { Claim, ClaimBoth } from "./studies/rows";
export { missingInputs, checkInputs, USER_INPUTS } from "./studies/inputs";
export { PRESETS, isPreset, pick } from "./studies/presets";
export type { Preset } from "./studies/presets";
