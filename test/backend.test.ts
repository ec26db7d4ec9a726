import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { availableBackends, BACKEND_ORDER, initBackend } from "../src/runtime/backend";

test("chooser picks the first usable backend in order and explains why", async () => {
  const saved = process.env.STUDY_BACKEND;
  delete process.env.STUDY_BACKEND;
  try {
    const r = await initBackend({ force: true });
    assert.ok(BACKEND_ORDER.includes(r.choice));
    assert.equal(r.tfBackend, tf.getBackend());
    const idx = r.attempts.findIndex((a) => a.ok);
    assert.equal(r.attempts[idx].name, r.choice);
    // every backend before the chosen one was tried and rejected with a reason
    assert.deepEqual(r.attempts.slice(0, idx).map((a) => a.name), BACKEND_ORDER.slice(0, idx));
    for (const a of r.attempts.slice(0, idx)) assert.ok(!a.ok && a.detail.length > 0);
    assert.match(r.reason, /first usable/);
  } finally {
    if (saved !== undefined) process.env.STUDY_BACKEND = saved;
  }
});

test("STUDY_BACKEND overrides the order", async () => {
  const saved = process.env.STUDY_BACKEND;
  process.env.STUDY_BACKEND = "cpu";
  try {
    const r = await initBackend({ force: true });
    assert.equal(r.choice, "cpu");
    assert.equal(tf.getBackend(), "cpu");
    assert.match(r.reason, /STUDY_BACKEND/);
  } finally {
    if (saved === undefined) delete process.env.STUDY_BACKEND;
    else process.env.STUDY_BACKEND = saved;
  }
});

test("an unknown STUDY_BACKEND is a clear error", async () => {
  await assert.rejects(initBackend({ prefer: "tpu" as never, force: true }), /not a backend.*wasm/);
});

test("cpu and wasm are always available to the tests", async () => {
  const names = await availableBackends();
  if (!process.env.STUDY_TEST_BACKENDS) {
    assert.ok(names.includes("cpu"));
    assert.ok(names.includes("wasm"));
  }
});
