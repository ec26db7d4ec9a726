// Weight files: safetensors read/write, torch .pth import, name maps to timm, pos_embed resize,
// loading into and saving from a model's named variables, and reference parity.
export * from "./safetensors";
export * from "./names";
export * from "./posembed";
export * from "./load";
export { readPth } from "./pth";
export { runParity, readParityFixture } from "./parity";
export type { ParityResult, ParityFixture, Comparison } from "./parity";
