// Training: the loop, optimizers, schedule, checkpoints, progress (whole experiments: src/studies).
export * from "./trainer";
export * from "./optimizers";
export * from "./schedule";
export * from "./checkpoint";
export * from "../ground/progress";
export { crossEntropy } from "./loss";
