// Weight files: safetensors read/write, torch .pth import, name maps to timm, pos_embed resize,
// loading into and saving from a model's named variables, whole-CLIP loading, and reference parity.
export * from "./safetensors";
export * from "./names";
export * from "./posembed";
export * from "./load";
export { readPth } from "./pth";
export { runParity, readParityFixture } from "./parity";
export type { ParityResult, ParityFixture, Comparison } from "./parity";
export * from "./clip-names";
export * from "./clip-load";
export { runClipParity, readClipFixture, checkTokenizer, isClipFixture } from "./clip-parity";
export type { ClipParityResult, ClipFixture, TokenizerCase, TokenizerCheck } from "./clip-parity";
