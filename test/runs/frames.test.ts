import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { danfo, toDataFrame } from "../../src/runs/frames";

const danfoLoaded = () => Object.keys(require.cache).some((f) => f.includes("/danfojs-node/"));

test("danfojs-node is loaded on first use, not on import", () => {
  assert.equal(danfoLoaded(), false);
  toDataFrame([{ a: 1 }]);
  assert.equal(danfoLoaded(), true);
});

test("danfojs-node runs on the project's tfjs-core, not a copy of its own", () => {
  assert.equal(danfo().tensorflow.engine(), tf.engine());
});

test("rows with differing keys: the union of the keys in first-seen order, missing cells null", () => {
  const df = toDataFrame([{ a: 1, b: "x" }, { b: "y", c: true }, { a: 2.5 }]);
  assert.deepEqual(df.columns, ["a", "b", "c"]);
  assert.deepEqual(df.values, [
    [1, "x", null],
    [null, "y", true],
    [2.5, null, null],
  ]);
  // danfo's own reading of the same rows puts row 2's `b` under `a` (it takes row 1's keys):
  // this is what the union avoids.
  const raw = new (danfo().DataFrame)([{ a: 1, b: "x" }, { b: "y", c: true }]);
  assert.deepEqual(raw.values[1], ["y", true]);
});

test("dtypes: integers, floats, booleans with a missing value, strings; mixed columns become strings", () => {
  const df = toDataFrame([
    { i: 1, big: 1, f: 0.5, b: true, s: "x", m: 1, d: new Date(Date.UTC(2024, 0, 2)), o: { k: [1] } },
    { i: -7, big: 17_563_137_024, f: 2, b: null, s: "y", m: "two", d: null, o: null },
  ]);
  assert.deepEqual(df.dtypes, ["int32", "float32", "float32", "boolean", "string", "string", "string", "string"]);
  assert.deepEqual(df.values, [
    [1, 1, 0.5, true, "x", "1", "2024-01-02T00:00:00.000Z", '{"k":[1]}'],
    [-7, 17_563_137_024, 2, null, "y", "two", null, null],
  ]);
});

test("an arquero table, and danfo's groupby mean equals arquero's", () => {
  const aq = require("arquero") as typeof import("arquero");
  const t = aq.table({ variant: ["tanh", "quick", "tanh", "quick", "tanh"], diff: [0.5, -0.5, 0.75, 0.25, 0.25] }); // exact in binary: both sums are exact
  const df = toDataFrame(t);
  assert.deepEqual(df.columns, ["variant", "diff"]);
  assert.deepEqual(df.shape, [5, 2]);
  const g = df.groupby(["variant"]).col(["diff"]).mean();
  const ours = Object.fromEntries((g.values as [string, number][]).map(([v, m]) => [v, m]));
  const theirs = Object.fromEntries(
    (t.groupby("variant").rollup({ m: aq.op.mean("diff") }).objects() as { variant: string; m: number }[]).map((r) => [r.variant, r.m]),
  );
  assert.deepEqual(ours, theirs);
});

test("columns option picks and orders; unknown names and non-tables are errors; zero rows keep the names", () => {
  const rows = [{ a: 1, b: 2, c: 3 }];
  assert.deepEqual(toDataFrame(rows, { columns: ["c", "a"] }).values, [[3, 1]]);
  assert.throws(() => toDataFrame(rows, { columns: ["z"] }), /no column 'z' \(has a, b, c\)/);
  assert.throws(() => toDataFrame({} as never), /expected an arquero table or an array of row objects/);
  const empty = toDataFrame([], { columns: [] });
  assert.deepEqual(empty.shape, [0, 0]);
  const aq = require("arquero") as typeof import("arquero");
  const none = toDataFrame(aq.table({ a: [], b: [] }));
  assert.deepEqual(none.shape, [0, 2]);
  assert.deepEqual(none.columns, ["a", "b"]);
});
