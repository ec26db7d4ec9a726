// tfjs-backend-webgpu asks Dawn for 'bgra8unorm-storage' as an array inside requiredFeatures,
// which Dawn's Node bindings refuse; the chooser flattens the list before it reaches Dawn.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { flatFeatures } from "../../src/runtime/backend";

test("requestDevice descriptors reach Dawn with a flat list of feature names", () => {
  const d = { requiredFeatures: ["timestamp-query", ["bgra8unorm-storage"]], requiredLimits: { maxBufferSize: 1 << 30 } };
  assert.deepEqual(flatFeatures(d), { requiredFeatures: ["timestamp-query", "bgra8unorm-storage"], requiredLimits: { maxBufferSize: 1 << 30 } });
  assert.deepEqual(flatFeatures({ requiredFeatures: ["a", "a", ["b"]] })?.requiredFeatures, ["a", "b"]);
  const none: { label: string; requiredFeatures?: string[] } = { label: "x" };
  assert.equal(flatFeatures(none), none);
  assert.equal(flatFeatures(undefined), undefined);
});
