import { test } from "node:test";
import * as assert from "node:assert/strict";
import { initBackend } from "../../src/runtime/backend";
import { explainWasmTrap, wasmHeapBytes } from "../../src/runtime/wasm";

test("a wasm trap becomes an error that names the heap limit and what to do", async () => {
  await initBackend({ prefer: "wasm", force: true });
  assert.ok((wasmHeapBytes() ?? 0) > 0);
  for (const msg of ["memory access out of bounds", "Aborted(). Build with -sASSERTIONS for more info."]) {
    const e = explainWasmTrap(new Error(msg), "training step 3 (batch 128)");
    assert.ok(e instanceof Error);
    assert.match(e.message, /^training step 3 \(batch 128\): the wasm backend trapped/);
    assert.match(e.message, /4 GiB/);
    assert.match(e.message, /lower the batch size/);
  }
  const other = new Error("shapes do not match");
  assert.equal(explainWasmTrap(other, "x"), other);
});

test("on another backend errors pass through unchanged", async () => {
  await initBackend({ prefer: "cpu", force: true });
  const e = new Error("memory access out of bounds");
  assert.equal(explainWasmTrap(e, "x"), e);
  assert.equal(wasmHeapBytes(), undefined);
});
