import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { forEachBackend } from "../support/backends";
import { runParity } from "../../src/weights/parity";
import { readSafetensors, writeSafetensors } from "../../src/weights/safetensors";

const REPO = path.resolve(__dirname, "..", "..");
const FIXTURES = path.resolve(REPO, "..", "shared", "fixtures");
const HAVE = existsSync(FIXTURES);
const SKIP = HAVE ? false : `parity fixtures not found at ${FIXTURES} (they live beside the repo in ../shared)`;

const CASES: [weights: string, fixture: string, naming: string][] = [
  ["vit-parity/micro.timm.safetensors", "vit-parity/micro.json", "timm"],
  ["vit-parity/micro.hf.safetensors", "vit-parity/micro.json", "hf-vit"],
  ["vit-parity/small16.timm.safetensors", "vit-parity/small16.json", "timm"],
  ["vit-parity/small16.hf.safetensors", "vit-parity/small16.json", "hf-vit"],
  ["clip-parity/tiny.openai.safetensors", "clip-parity/tiny.json", "openai-clip"],
  ["clip-parity/tiny.hf.safetensors", "clip-parity/tiny.json", "hf-clip"],
];

forEachBackend("parity with the reference fixtures", (backend) => {
  for (const [w, f, naming] of CASES) {
    test(`${w} vs ${f}`, { skip: SKIP }, async () => {
      const r = await runParity(path.join(FIXTURES, w), path.join(FIXTURES, f));
      assert.equal(r.naming, naming);
      const msg = `[${backend}] logits ${r.logits.maxAbsErr} (x${r.logits.worstRatio} tol), features ${r.features?.maxAbsErr}`;
      assert.ok(r.logits.ok, msg);
      if (r.fixture.kind === "timm-vit") assert.ok(r.features?.ok, msg);
      assert.ok(r.ok, msg);
      assert.ok(Number.isFinite(r.logits.maxAbsErr));
    });
  }
});

function study(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, "bin", "study.js"), ...args], { cwd: REPO, env: { ...process.env, STUDY_BACKEND: "cpu" } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe("study parity (command line)", () => {
  test("passes on a fixture: exit 0, both errors on the last line", { skip: SKIP }, async () => {
    const r = await study(["parity", path.join(FIXTURES, "vit-parity/micro.hf.safetensors"), path.join(FIXTURES, "vit-parity/micro.json")]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const last = r.stdout.trim().split("\n").pop()!;
    const m = /^PASS logits_max_abs_err=(\S+) features_max_abs_err=(\S+)$/.exec(last);
    assert.ok(m, last);
    assert.ok(Number(m[1]) < 1e-4 && Number(m[2]) < 1e-4, last);
  });

  test("fails on perturbed weights: exit 1, the error shows on the last line", { skip: SKIP }, async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "parity-"));
    const bad = path.join(dir, "bad.safetensors");
    const { tensors, metadata } = await readSafetensors(path.join(FIXTURES, "vit-parity/micro.timm.safetensors"));
    const host = new Map([...tensors].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
    host.get("head.bias")!.data[3] += 0.01; // only logit 3 moves, by exactly this much
    await writeSafetensors(bad, host, metadata);
    const r = await study(["parity", bad, path.join(FIXTURES, "vit-parity/micro.json")]);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const last = r.stdout.trim().split("\n").pop()!;
    const m = /^FAIL logits_max_abs_err=(\S+) features_max_abs_err=(\S+)$/.exec(last);
    assert.ok(m, last);
    assert.ok(Math.abs(Number(m[1]) - 0.01) < 1e-4, last);
    assert.ok(Number(m[2]) < 1e-4, "features do not see the head");
  });

  test("usage errors exit 2; a weights file that does not fit the fixture is named", { skip: SKIP }, async () => {
    assert.equal((await study(["parity", "only-one-arg"])).code, 2);
    const r = await study(["parity", path.join(FIXTURES, "vit-parity/small16.timm.safetensors"), path.join(FIXTURES, "vit-parity/micro.json")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /small16\.timm\.safetensors does not fit .*micro\.json: imageSize: fixture 32, weights 64; patchSize: fixture 4, weights 16/);
  });
});
