// The chooser and danfojs-node's tfjs-node: danfojs-node depends on @tensorflow/tfjs-node, which
// package.json overrides to @tensorflow/tfjs. That alias is installed under the name
// @tensorflow/tfjs-node, and npm hoists it to the top-level node_modules wherever the real package
// is absent, so `require("@tensorflow/tfjs-node")` may load it. Each case runs in a child process
// whose NODE_PATH puts a prepared node_modules where the repository has no tfjs-node.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BackendReport } from "../../src/runtime/backend";
import { REPO_ROOT } from "../../src/ground/root";
import { tempDir } from "../support/fixtures";

const repoModules = path.join(REPO_ROOT, "node_modules");
const realInRepo = (() => {
  try {
    return (JSON.parse(fs.readFileSync(require.resolve("@tensorflow/tfjs-node/package.json"), "utf8")) as { name: string }).name === "@tensorflow/tfjs-node";
  } catch {
    return false;
  }
})();
// With a real tfjs-node in the repository, Node finds it before NODE_PATH: nothing to test here.
const skip = realInRepo && "a real @tensorflow/tfjs-node is installed in the repository";

/** The alias as npm installed it: nested under danfojs-node, or hoisted. */
function installedAlias(): string {
  for (const dir of [path.join(repoModules, "danfojs-node", "node_modules", "@tensorflow", "tfjs-node"), path.join(repoModules, "@tensorflow", "tfjs-node")]) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, "utf8")) as { name: string }).name === "@tensorflow/tfjs") return dir;
  }
  throw new Error("danfojs-node's @tensorflow/tfjs-node alias is not installed (npm ci)");
}

/** Runs initBackend (no STUDY_BACKEND) in a child with `modules` on NODE_PATH; its report and stderr. */
function chooseWith(modules: string): { report: BackendReport; resolved: string; stderr: string } {
  const script = path.join(modules, "..", "choose.ts");
  fs.writeFileSync(
    script,
    `import { initBackend } from ${JSON.stringify(path.join(REPO_ROOT, "src", "runtime", "backend"))};\n` +
      `import * as tf from "@tensorflow/tfjs";\n` +
      `const resolved = require.resolve("@tensorflow/tfjs-node");\n` +
      `initBackend().then((report) => {\n` +
      `  const sum = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync();\n` +
      `  console.log(JSON.stringify({ report, resolved, sum: Array.from(sum) }));\n` +
      `  process.exit(0);\n` +
      `});\n`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: [modules, repoModules].join(path.delimiter), STUDY_TEST_BACKENDS: "" };
  delete env.STUDY_BACKEND;
  const r = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, env, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `child failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { report: BackendReport; resolved: string; sum: number[] };
  assert.deepEqual(out.sum, [4, 6], "the chosen backend computes");
  return { report: out.report, resolved: out.resolved, stderr: r.stderr };
}

test("danfojs-node's alias in place of @tensorflow/tfjs-node is reported as not installed, not chosen", { skip }, () => {
  const modules = path.join(tempDir("native-alias"), "node_modules");
  fs.mkdirSync(path.join(modules, "@tensorflow"), { recursive: true });
  fs.symlinkSync(installedAlias(), path.join(modules, "@tensorflow", "tfjs-node"), "dir");
  const { report, resolved } = chooseWith(modules);
  assert.ok(fs.realpathSync(resolved).startsWith(fs.realpathSync(installedAlias())), `require("@tensorflow/tfjs-node") loads the alias (${resolved})`);
  const node = report.attempts.find((a) => a.name === "tfjs-node")!;
  assert.equal(node.ok, false);
  assert.match(node.detail, /^@tensorflow\/tfjs-node is not installed \(danfojs-node's alias to @tensorflow\/tfjs@4\.22\.0 is in its place\)$/);
  assert.notEqual(report.choice, "tfjs-node");
  assert.notEqual(report.tfBackend, "tensorflow");
  assert.match(report.reason, /tfjs-node: @tensorflow\/tfjs-node is not installed \(danfojs-node's alias/);
});

test("a package that is tfjs-node by name and registers the tensorflow backend is chosen", { skip }, () => {
  // A stand-in for the native package (which needs libtensorflow, not installable here): its
  // package.json name and the "tensorflow" backend it registers are what the chooser checks.
  const modules = path.join(tempDir("native-real"), "node_modules");
  const dir = path.join(modules, "@tensorflow", "tfjs-node");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "@tensorflow/tfjs-node", version: "4.22.0", main: "index.js" }));
  fs.writeFileSync(
    path.join(dir, "index.js"),
    `const tf = require("@tensorflow/tfjs");\n` +
      `const { MathBackendCPU } = require("@tensorflow/tfjs-backend-cpu");\n` +
      `tf.registerBackend("tensorflow", () => new MathBackendCPU(), 3);\n` +
      `for (const k of tf.getKernelsForBackend("cpu")) tf.registerKernel({ ...k, backendName: "tensorflow" });\n` +
      `module.exports = tf;\n`,
  );
  const { report, resolved } = chooseWith(modules);
  assert.equal(fs.realpathSync(resolved), fs.realpathSync(path.join(dir, "index.js")));
  assert.equal(report.choice, "tfjs-node");
  assert.equal(report.tfBackend, "tensorflow");
  assert.deepEqual(report.attempts.map((a) => [a.name, a.ok]), [["tfjs-node-gpu", false], ["tfjs-node", true]]);
  assert.equal(report.attempts[1].detail, "@tensorflow/tfjs-node loaded");
});

test("a tfjs-node by name that registers no tensorflow backend is rejected with the reason", { skip }, () => {
  const modules = path.join(tempDir("native-broken"), "node_modules");
  const dir = path.join(modules, "@tensorflow", "tfjs-node");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "@tensorflow/tfjs-node", version: "4.22.0", main: "index.js" }));
  fs.writeFileSync(path.join(dir, "index.js"), `module.exports = require("@tensorflow/tfjs");\n`);
  const { report } = chooseWith(modules);
  const node = report.attempts.find((a) => a.name === "tfjs-node")!;
  assert.equal(node.ok, false);
  assert.equal(node.detail, `@tensorflow/tfjs-node loaded but registered no "tensorflow" backend`);
  assert.notEqual(report.tfBackend, "tensorflow");
});
