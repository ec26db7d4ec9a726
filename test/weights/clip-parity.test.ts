import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CLIP_SKIP, MERGES, REPO, TINY_JSON, TINY_WEIGHTS } from "../support/clip-fixture";
import { readSafetensors, writeSafetensors } from "../../src/weights/safetensors";

const SKIP = CLIP_SKIP;
const LAST = /^(PASS|FAIL) image_features=(\S+) text_features=(\S+) logits_per_image=(\S+) tokenizer=(\d+)\/(\d+)$/;

function study(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, "bin", "study.js"), ...args], { cwd: REPO, env: { ...process.env, STUDY_BACKEND: "cpu", ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const lastLine = (s: string) => s.trim().split("\n").pop()!;

describe("study parity on the CLIP fixture (command line)", { skip: SKIP }, () => {
  for (const naming of ["openai-clip", "hf-clip"] as const) {
    test(`${naming}: exit 0, the three errors and 8/8 tokenizer cases on the last line`, async () => {
      const r = await study(["parity", TINY_WEIGHTS[naming], TINY_JSON]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const m = LAST.exec(lastLine(r.stdout));
      assert.ok(m, lastLine(r.stdout));
      assert.equal(m[1], "PASS");
      for (const e of [m[2], m[3], m[4]]) assert.ok(Number(e) < 1e-4, lastLine(r.stdout));
      assert.deepEqual([m[5], m[6]], ["8", "8"]);
      assert.match(r.stdout, new RegExp(`\\(${naming} names, 62 tensors loaded`));
    });
  }

  test("a perturbed text projection fails: exit 1, FAIL with the text error on the last line, image features untouched", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "clip-parity-"));
    const { tensors, metadata } = await readSafetensors(TINY_WEIGHTS["openai-clip"]);
    const host = new Map([...tensors].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
    host.get("text_projection")!.data[0] += 0.5;
    const bad = path.join(dir, "bad.safetensors");
    await writeSafetensors(bad, host, metadata);
    const r = await study(["parity", bad, TINY_JSON]);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const m = LAST.exec(lastLine(r.stdout));
    assert.ok(m && m[1] === "FAIL", lastLine(r.stdout));
    assert.ok(Number(m[2]) < 1e-4 && Number(m[3]) > 1e-3, lastLine(r.stdout));
    assert.match(r.stdout, /text_features .* FAIL/);
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test("without a merges file beside the fixture: --bpe is used, and with none anywhere the error names every place", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "clip-parity-"));
    const json = path.join(dir, "tiny.json");
    await fsp.copyFile(TINY_JSON, json);
    const env = { STUDY_CLIP_BPE: undefined, STUDY_DATA_DIR: path.join(dir, "data") };
    const ok = await study(["parity", TINY_WEIGHTS["hf-clip"], json, "--bpe", MERGES], env);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.ok(ok.stdout.includes(`merges:   ${path.resolve(MERGES)}`), ok.stdout);
    const none = await study(["parity", TINY_WEIGHTS["hf-clip"], json], env);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /bpe_simple_vocab_16e6\.txt\.gz was not found[\s\S]*STUDY_CLIP_BPE[\s\S]*data[/\\]bpe_simple_vocab_16e6\.txt\.gz[\s\S]*https:\/\/github\.com\/openai\/CLIP\/raw\/main\/clip\/bpe_simple_vocab_16e6\.txt\.gz/);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
