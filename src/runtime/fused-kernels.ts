// The contract between the model's fused ops (src/model/ops.ts) and the backends that provide
// kernels for them (wasm: src/runtime/wasm-kernels.ts; webgpu: src/runtime/webgpu-kernels.ts). Inputs and outputs:
//   gelu: {x} -> y;  geluGrad: {x, dy} -> dx;
//   layerNorm: {x, weight, bias}, {eps} -> y;  layerNormGrad: {dy, x, weight}, {eps} -> [dx, dweight, dbias].
// They are used for float32 inputs whose last axis is a non-zero multiple of 4 (a SIMD vector).
export const FusedKernel = {
  gelu: "StudyGelu",
  geluGrad: "StudyGeluGrad",
  layerNorm: "StudyLayerNorm",
  layerNormGrad: "StudyLayerNormGrad",
} as const;
