// Evaluation: features, top-1 and DINO's weighted k-NN.
export * from "./features";
export * from "./knn";
export * from "./evaluate";
