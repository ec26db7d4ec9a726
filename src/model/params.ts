// Analytic parameter counts of a ViT config, from shapes only (no tensor is allocated), so
// `study params` can count ViT-B/16 instantly. What a strategy trains: src/adapters/strategies.ts.
import type { ViTConfig } from "./config";
import { parameterShapes } from "./vit";

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Parameters whose name satisfies `pick` (all by default). */
export function countParams(c: ViTConfig, pick: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const [name, shape] of parameterShapes(c)) if (pick(name)) n += numel(shape);
  return n;
}

/** Parameters of one transformer block. */
export function blockParams(c: ViTConfig): number {
  return countParams(c, (n) => n.startsWith("blocks.0."));
}

/** Parameters of the head (0 without one). */
export function headParams(c: ViTConfig): number {
  return countParams(c, (n) => n.startsWith("head."));
}

/** Everything but the head. */
export function backboneParams(c: ViTConfig): number {
  return countParams(c, (n) => !n.startsWith("head."));
}
