// The fine-tuning library in one import for notebooks:
//   import { applyStrategy } from "../src/adapters";
//   const tm = applyStrategy(vit, { kind: "selective-lora", rank: 8, lambda: 0.1, penaltyStartStep: 780 });
export * from "./strategies";
export * from "./lora";
export * from "./selective";
export * from "./expansion";
export * from "./targets";
export * from "./io";
export { trainableParams, countParams, blockParams, headParams, backboneParams } from "../model/params";
export { forwardMacs, modelForwardMacs } from "../model/flops";
