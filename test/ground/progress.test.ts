import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createProgress, inNotebook, progressMode } from "../../src/ground/progress";

function captureStderr(fn: () => void): string {
  const orig = process.stderr.write.bind(process.stderr);
  let out = "";
  (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => { out += s; return true; };
  try { fn(); } finally { (process.stderr as unknown as { write: typeof orig }).write = orig; }
  return out;
}

test("plain mode: throttled lines with rate and status; bar mode redraws one line", () => {
  const plain = captureStderr(() => {
    const p = createProgress("train", 10, { mode: "plain", unit: "step", minIntervalMs: 0 });
    for (let i = 1; i <= 10; i++) p.update(i, `loss ${(1 / i).toFixed(2)}`);
    p.finish("done");
  });
  const lines = plain.trim().split("\n");
  assert.equal(lines.length, 11);
  assert.match(lines[9], /^train 10\/10 step \[.*step\/s\] loss 0\.10$/);
  assert.match(lines[10], /done$/);
  const bar = captureStderr(() => {
    const p = createProgress("dl", 4, { mode: "bar", minIntervalMs: 0 });
    p.update(2);
    p.finish();
  });
  assert.match(bar, /^\r█{12}░{12} dl 2\/4/);
  assert.ok(bar.endsWith("\n"));
  assert.equal(captureStderr(() => createProgress("x", 1, { mode: "off" }).finish()), "");
});

test("notebook mode outside a running kernel falls back to lines instead of throwing", () => {
  assert.equal(inNotebook(), false);
  const out = captureStderr(() => {
    const p = createProgress("nb", 2, { mode: "notebook", minIntervalMs: 0 });
    p.update(1);
    p.finish();
  });
  assert.match(out, /nb 1\/2/);
});

test("STUDY_PROGRESS overrides the detected mode", () => {
  const saved = process.env.STUDY_PROGRESS;
  process.env.STUDY_PROGRESS = "off";
  try { assert.equal(progressMode(), "off"); } finally { if (saved === undefined) delete process.env.STUDY_PROGRESS; else process.env.STUDY_PROGRESS = saved; }
});
