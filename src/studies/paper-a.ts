// Paper A (arXiv 2404.17245) as one namespace for notebooks: `paperA.recipe(preset)`,
// `paperA.variants(...)`, `paperA.table1(rows)`, `paperA.table1Claims(...)`, ...
export * from "./paper-a/recipe";
export * from "./paper-a/table1";
export * from "./paper-a/curve";
export * from "./paper-a/targets";
export * as published from "./paper-a/published";
