// The provenance line at the top of every executed study notebook: commit, dirty flag, backend
// and versions, nothing machine-specific.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { provenanceLine } from "../../src/runtime/record";
import type { RunEnvironment } from "../../src/runtime/record";

const env = (git: RunEnvironment["git"], backend: RunEnvironment["backend"]): RunEnvironment => ({
  versions: { node: "20.19.5", tfjs: "4.22.0", tslab: "1.0.22", project: "0.1.0" },
  git,
  machine: { platform: "linux 6.1", arch: "x64", cpus: 2, cpuModel: "some cpu", memoryGiB: 24, hostname: "box" },
  backend,
});
const wasm = { choice: "wasm", tfBackend: "wasm", reason: "threaded SIMD wasm", attempts: [], tfjsVersion: "4.22.0" } as RunEnvironment["backend"];
const commit = "0123456789abcdef0123456789abcdef01234567";

const cases: { name: string; env: RunEnvironment; line: string }[] = [
  { name: "a clean checkout", env: env({ commit, dirty: false }, wasm), line: `commit ${commit} · backend wasm · node 20.19.5, tfjs 4.22.0, tslab 1.0.22, project 0.1.0` },
  { name: "uncommitted changes", env: env({ commit, dirty: true }, wasm), line: `commit ${commit} with uncommitted changes · backend wasm · node 20.19.5, tfjs 4.22.0, tslab 1.0.22, project 0.1.0` },
  { name: "no git, no backend", env: env({ commit: null, dirty: null }, null), line: "not in a git checkout · backend none · node 20.19.5, tfjs 4.22.0, tslab 1.0.22, project 0.1.0" },
];

for (const c of cases) {
  test(`provenance line: ${c.name}`, () => {
    const line = provenanceLine(c.env);
    assert.equal(line, c.line);
    assert.doesNotMatch(line, /box|some cpu|linux/, "nothing of the machine");
  });
}
