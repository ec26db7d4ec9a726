// Training: the loop, optimizers, schedule, checkpoints, progress, and whole experiments.
export * from "./trainer";
export * from "./optimizers";
export * from "./schedule";
export * from "./checkpoint";
export * from "./progress";
export { crossEntropy } from "./loss";
export { runExperiment, createModel, fullFineTuning } from "./experiment";
export type { ExperimentConfig, ExperimentResults, RunOptions } from "./experiment";
