// Noise the runtime keeps out of every process's output, without hiding real warnings: tfjs's
// "install tfjs-node" notice (the backend report says that) and Dawn's "Couldn't load Vulkan"
// where there is no Vulkan loader. Each case runs in a child process, where the output starts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { findVulkanDrivers, findVulkanLoader } from "../../src/runtime/backend";
import { REPO_ROOT } from "../../src/ground/root";
import { tempDir } from "../support/fixtures";

const BACKEND = JSON.stringify(path.join(REPO_ROOT, "src", "runtime", "backend"));
const NOTICE = "looks like you are running TensorFlow.js in Node.js";
const VULKAN = "Couldn't load Vulkan";

/** Runs TypeScript `source` in a child process (packages from the repository); its stdout and stderr together. */
function run(source: string, env: NodeJS.ProcessEnv = {}): string {
  const script = path.join(tempDir("quiet"), "child.ts");
  fs.writeFileSync(script, source);
  const childEnv = { ...process.env, NODE_PATH: path.join(REPO_ROOT, "node_modules"), ...env };
  const r = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, env: childEnv, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

// The first tensor makes the engine create its backend anew (a second cpu instance), as when a
// test computes before choosing a backend.
const cpuTensorAndWarning = `
tf.tensor1d([0]).dataSync();
await tf.setBackend("cpu");
tf.tensor1d([1, 2]).dataSync();
tf.deprecationWarn("a tfjs deprecation warning");
`;

test("tfjs's install-tfjs-node notice is off once the chooser is loaded; tfjs's other warnings are not", () => {
  const quiet = run(`import ${BACKEND};\nimport * as tf from "@tensorflow/tfjs";\n(async () => {${cpuTensorAndWarning}})();\n`);
  assert.ok(!quiet.includes(NOTICE), quiet);
  assert.match(quiet, /a tfjs deprecation warning/);
  // The same without the chooser: tfjs prints the notice (so the check above can see it).
  const plain = run(`import * as tf from "@tensorflow/tfjs";\n(async () => {${cpuTensorAndWarning}})();\n`);
  assert.ok(plain.includes(NOTICE), plain);
});

test("findVulkanLoader finds libvulkan.so.1 in LD_LIBRARY_PATH", () => {
  const dir = tempDir("vulkan");
  fs.writeFileSync(path.join(dir, "libvulkan.so.1"), "");
  assert.equal(findVulkanLoader({ LD_LIBRARY_PATH: `/nonexistent:${dir}` }), path.join(dir, "libvulkan.so.1"));
});

test("findVulkanDrivers reads the driver manifests the Vulkan loader would", () => {
  const dir = tempDir("vulkan-icd");
  const icd = path.join(dir, "vulkan", "icd.d");
  fs.mkdirSync(icd, { recursive: true });
  fs.writeFileSync(path.join(icd, "a.json"), "{}");
  fs.writeFileSync(path.join(icd, "notes.txt"), "");
  const extra = path.join(dir, "extra.json");
  fs.writeFileSync(extra, "{}");
  const none = { XDG_CONFIG_DIRS: "/nonexistent", XDG_DATA_DIRS: "/nonexistent", HOME: "/nonexistent" };
  assert.deepEqual(findVulkanDrivers({ ...none, XDG_DATA_DIRS: dir }).filter((f) => f.startsWith(dir)), [path.join(icd, "a.json")]);
  assert.deepEqual(findVulkanDrivers({ ...none, VK_DRIVER_FILES: `${extra}:/nonexistent.json`, XDG_DATA_DIRS: dir }), [extra]); // replaces the search
  assert.deepEqual(findVulkanDrivers({ ...none, VK_ICD_FILENAMES: icd }), [path.join(icd, "a.json")]); // a folder of manifests
  assert.deepEqual(findVulkanDrivers({ ...none, VK_ADD_DRIVER_FILES: extra }).filter((f) => f.startsWith(dir)), [extra]);
});

const noLoader = process.platform !== "linux" ? "Linux only" : findVulkanLoader() !== null && `this machine has a Vulkan loader (${findVulkanLoader()})`;

test("without a Vulkan loader Dawn is not started, and the report says why", { skip: noLoader }, () => {
  const out = run(
    `import { initBackend } from ${BACKEND};\n` +
      `initBackend().then((r) => { console.log("WEBGPU " + r.attempts.find((a) => a.name === "webgpu")!.detail); process.exit(0); });\n`,
    { STUDY_BACKEND: "", STUDY_DAWN_OPTIONS: "" },
  );
  assert.ok(!out.includes(VULKAN), out);
  assert.match(out, /^WEBGPU no Vulkan loader \(libvulkan\.so\.1 not in LD_LIBRARY_PATH, the ld\.so cache or \/usr\/lib\): Dawn not started$/m);
  // Dawn itself, started here, prints the warning the chooser avoids.
  const dawn = run(`const { create } = require("webgpu");\ncreate([]).requestAdapter().then(() => process.exit(0));\n`);
  assert.ok(dawn.includes(VULKAN), dawn);
});

const loaderOnly = process.platform !== "linux" ? "Linux only" : findVulkanLoader() === null && "this machine has no Vulkan loader";

test("with a Vulkan loader but no driver Dawn is not started either, and the report says why", { skip: loaderOnly }, (t) => {
  const nowhere = { XDG_CONFIG_DIRS: "/nonexistent", XDG_DATA_DIRS: "/nonexistent", XDG_DATA_HOME: "/nonexistent", VK_DRIVER_FILES: "", VK_ICD_FILENAMES: "", VK_ADD_DRIVER_FILES: "" };
  // /etc/vulkan/icd.d is searched too: only where it holds no manifest is this the no-driver case.
  if (findVulkanDrivers(nowhere).length > 0) {
    t.skip("/etc/vulkan/icd.d holds a driver manifest");
    return;
  }
  const out = run(
    `import { initBackend } from ${BACKEND};\n` +
      `initBackend().then((r) => { console.log("WEBGPU " + r.attempts.find((a) => a.name === "webgpu")!.detail); process.exit(0); });\n`,
    { STUDY_BACKEND: "", STUDY_DAWN_OPTIONS: "", ...nowhere },
  );
  assert.ok(!out.includes("Found no drivers"), out);
  assert.match(out, /^WEBGPU a Vulkan loader but no Vulkan driver .*: Dawn not started$/m);
});
