// Evaluation: features, top-1, DINO's weighted k-NN, CLIP zero-shot.
export * from "./features";
export * from "./knn";
export * from "./evaluate";
export * from "./zeroshot";
export * from "./imagenet-prompts";
