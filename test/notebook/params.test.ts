import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Notebook, readNotebook, serialize, text } from "../../src/notebook/ipynb";
import { declaredParams, injectParameters, injectedSource, parseSetting } from "../../src/notebook/params";

function nb(...sources: [string, string[]?][]): Notebook {
  return {
    cells: sources.map(([s, tags], i) => ({ cell_type: "code", id: `c${i}`, metadata: tags ? { tags } : {}, source: s, outputs: [], execution_count: null })),
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
}

test("declaredParams lists top-level declarations with their keyword", () => {
  const d = declaredParams('// defaults\nconst preset = "laptop"; // comment\nlet steps: number = 10, lr = 0.1;\nvar tag = "x";\nfunction f() { const inner = 1; }\nconst { a } = { a: 1 };');
  assert.deepEqual(d, [
    { name: "preset", keyword: "const" },
    { name: "steps", keyword: "let" },
    { name: "lr", keyword: "let" },
    { name: "tag", keyword: "var" },
  ]);
});

test("parseSetting reads JSON values and falls back to strings", () => {
  assert.deepEqual(parseSetting("lr=0.01"), ["lr", 0.01]);
  assert.deepEqual(parseSetting("on=true"), ["on", true]);
  assert.deepEqual(parseSetting("ranks=[4,8]"), ["ranks", [4, 8]]);
  assert.deepEqual(parseSetting('name="a b"'), ["name", "a b"]);
  assert.deepEqual(parseSetting("name=hello"), ["name", "hello"]);
  assert.deepEqual(parseSetting("expr=a=b"), ["expr", "a=b"]);
  assert.throws(() => parseSetting("novalue"), /key=value/);
  assert.throws(() => parseSetting("2x=1"), /not an identifier/);
});

test("the injected cell follows the parameters cell and re-declares with the same keyword", () => {
  const src = nb(["# title"], ['const preset = "laptop";\nlet steps = 10;', ["parameters"]], ["console.log(preset)"]);
  const out = injectParameters(src, { preset: "smoke", steps: 3 }, "x.ipynb");
  assert.equal(out.cells.length, 4);
  const cell = out.cells[2];
  assert.deepEqual(cell.metadata.tags, ["injected-parameters"]);
  assert.equal(cell.id, "injected-parameters");
  assert.match(text(cell.source), /^const preset = "smoke";$/m);
  assert.match(text(cell.source), /^let steps = 3;$/m);
  assert.equal(text(out.cells[3].source), "console.log(preset)");
  assert.equal(src.cells.length, 3, "the input notebook is not modified");
});

test("injecting again replaces the earlier injected cell", () => {
  const once = injectParameters(nb(["const a = 1;", ["parameters"]], ["a"]), { a: 2 }, "x.ipynb");
  const twice = injectParameters(once, { a: 3 }, "x.ipynb");
  assert.equal(twice.cells.length, 3);
  assert.match(text(twice.cells[1].source), /const a = 3;/);
  assert.doesNotMatch(text(twice.cells[1].source), /a = 2/);
});

test("unknown parameters and a missing parameters cell are errors naming the file", () => {
  assert.throws(() => injectParameters(nb(["const a = 1;", ["parameters"]]), { b: 1, c: 2 }, "nb/x.ipynb"), /nb\/x\.ipynb: unknown parameters b, c; the parameters cell declares a/);
  assert.throws(() => injectParameters(nb(["const a = 1;"]), { a: 1 }, "y.ipynb"), /y\.ipynb: no cell is tagged 'parameters'/);
  assert.equal(injectParameters(nb(["const a = 1;"]), {}, "y.ipynb").cells.length, 1, "nothing to inject is fine");
});

test("injected values are TypeScript literals that round-trip", () => {
  const values = { s: 'quote " and \\ and \n', n: -1.5e-7, arr: [1, "two", null], obj: { k: [true] } };
  const src = injectedSource(values, []);
  for (const [k, v] of Object.entries(values)) {
    const line = src.split("\n").find((l) => l.startsWith(`const ${k} = `))!;
    assert.deepEqual(JSON.parse(line.slice(`const ${k} = `.length, -1)), v);
  }
});

test("serialize matches Jupyter's format: sorted keys, one-space indent, final newline", () => {
  const s = serialize({ nbformat: 4, nbformat_minor: 5, metadata: { z: 1, a: { d: 2, c: 3 } }, cells: [] });
  assert.equal(s, '{\n "cells": [],\n "metadata": {\n  "a": {\n   "c": 3,\n   "d": 2\n  },\n  "z": 1\n },\n "nbformat": 4,\n "nbformat_minor": 5\n}\n');
});

test("readNotebook errors name the file and the problem", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nbread-"));
  try {
    const bad = path.join(dir, "bad.ipynb");
    fs.writeFileSync(bad, "{ not json");
    assert.throws(() => readNotebook(bad), new RegExp(`${bad.replace(/[.]/g, "\\.")}: not a notebook, invalid JSON`));
    fs.writeFileSync(bad, JSON.stringify({ nbformat: 3, cells: [] }));
    assert.throws(() => readNotebook(bad), /bad\.ipynb: nbformat 3 is not supported/);
    fs.writeFileSync(bad, JSON.stringify({ nbformat: 4, cells: [{ cell_type: "code" }] }));
    assert.throws(() => readNotebook(bad), /bad\.ipynb: cell 0 has no source/);
    assert.throws(() => readNotebook(path.join(dir, "missing.ipynb")), /missing\.ipynb: cannot read notebook \(ENOENT\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
