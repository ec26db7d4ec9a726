// Paper B (arXiv 2501.15377) as one namespace for notebooks: `paperB.lambdaStudy(preset)`, ...
export * from "./paper-b/recipe";
export * from "./paper-b/lambda";
export * from "./paper-b/clip";
