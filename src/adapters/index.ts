// The fine-tuning library in one import (a notebook imports the file: tslab resolves no folders):
//   import { applyStrategy } from "./src/adapters/index";
//   const tm = applyStrategy(vit, { kind: "selective-lora", rank: 8, lambda: 0.1, penaltyStartStep: 780 });
export * from "./strategies";
export * from "./lora";
export * from "./selective";
export * from "./expansion";
export * from "./targets";
export * from "./io";
export { countParams, blockParams, headParams, backboneParams } from "../model/params";
export { forwardMacs, modelForwardMacs } from "../model/flops";
