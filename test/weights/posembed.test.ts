import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { resamplePosEmbed, resizeGrid } from "../../src/weights/posembed";
import { HostTensor } from "../../src/weights/safetensors";

const close = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol;
const resize1d = (v: number[], W: number, aa: boolean) => [...resizeGrid(v, 1, v.length, 1, 1, W, aa)];

// Values derived by hand from the definitions in posembed.ts's header (Pillow cubic a=-0.5 with
// renormalised, truncated windows for antialias; Keys cubic a=-0.75 with clamped edges otherwise).
describe("bicubic resize against hand-derived values", () => {
  test("antialias upsampling 2 -> 4 of [1, 0]", () => {
    // out[0]: centre 0.25, taps j=0,1 at distances 0.25, 1.25: 111/128 and -9/128, normalised by 102/128.
    // out[1]: centre 0.75, taps at 0.25, 0.75: 111/128 and 29/128, normalised by 140/128.
    const out = resize1d([1, 0], 4, true);
    assert.ok(close(out[0], 111 / 102), `${out[0]}`);
    assert.ok(close(out[1], 111 / 140), `${out[1]}`);
    assert.ok(close(out[2], 29 / 140) && close(out[3], -9 / 102), `${out}`); // mirror image
  });

  test("antialias downsampling 4 -> 2 of [1, 0, 0, 0]: the stretched (low-pass) kernel", () => {
    // scale 2: support 4, centre 1, taps j=0..3 at (j-0.5)/2 = -0.25, 0.25, 0.75, 1.25:
    // 111, 111, 29, -9 (/128); out[0] = 111/242, out[1] = -9/242.
    const out = resize1d([1, 0, 0, 0], 2, true);
    assert.ok(close(out[0], 111 / 242), `${out[0]}`);
    assert.ok(close(out[1], -9 / 242), `${out[1]}`);
  });

  test("plain bicubic (antialias off) upsampling 2 -> 4 of [1, 0]: PyTorch's clamped Keys kernel", () => {
    // out[0]: source x = -0.25, taps at -2..1 clamped to 0,0,0,1 with weights
    // k(1.75)+k(0.75)+k(0.25) = 283/256 on input 0 and k(1.25) = -27/256 on input 1.
    // out[1]: source x = 0.25: k(1.25)+k(0.25) = 99/128 on input 0.
    const out = resize1d([1, 0], 4, false);
    assert.ok(close(out[0], 283 / 256), `${out[0]}`);
    assert.ok(close(out[1], 99 / 128), `${out[1]}`);
  });

  test("constants stay constant; linear ramps stay linear in the interior only with a = -0.5", () => {
    for (const aa of [true, false]) for (const [n, m] of [[5, 9], [9, 5], [7, 7], [3, 14]]) {
      for (const v of resize1d(new Array(n).fill(2.5), m, aa)) assert.ok(close(v, 2.5, 1e-12), `${n}->${m} aa=${aa}: ${v}`);
    }
    // Keys' cubic is exact on linear functions for a = -0.5 (the antialias kernel) where the window
    // is whole; a = -0.75 (plain path) is not: at source x = 1.75 it gives
    // 1*k(0.75) + 2*k(0.25) + 3*k(1.25) = (67 + 450 - 81)/256 = 109/64, not 1.75.
    const ramp = [0, 1, 2, 3, 4, 5, 6, 7];
    const aa = resize1d(ramp, 16, true);
    for (let i = 4; i < 12; i++) assert.ok(close(aa[i], 0.5 * i - 0.25, 1e-12), `ramp at ${i}: ${aa[i]}`);
    assert.ok(close(resize1d(ramp, 16, false)[4], 109 / 64), "plain path at x = 1.75");
  });

  test("same size is the identity in both modes", () => {
    const v = [3, -1, 4, 1, -5, 9];
    for (const aa of [true, false]) assert.deepEqual(resize1d(v, 6, aa), v);
  });
});

describe("resamplePosEmbed", () => {
  const pe = (grid: number, d: number, prefix: number): HostTensor => {
    const n = prefix + grid * grid;
    return { dtype: "float32", shape: [1, n, d], data: Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.37) * 3) };
  };

  test("separable: a rank-one grid resizes to the outer product of its 1-D resizes; prefix kept bit-exact", () => {
    const u = [1, -2, 0.5, 3];
    const v = [0.25, 2, -1, 1.5];
    const d = 2; // channel c holds (c+1) * u[y] * v[x]
    const data = new Float32Array(1 * d + 16 * d);
    data.set([7.125, -3.5]); // the class token
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < d; c++) data[d + (y * 4 + x) * d + c] = (c + 1) * u[y] * v[x];
    for (const [H, aa] of [[6, true], [3, true], [7, false]] as [number, boolean][]) {
      const out = resamplePosEmbed({ dtype: "float32", shape: [1, 17, d], data }, [H, H], { antialias: aa });
      assert.deepEqual(out.shape, [1, 1 + H * H, d]);
      assert.deepEqual([...out.data.slice(0, d)], [7.125, -3.5]);
      const ru = resize1d(u, H, aa);
      const rv = resize1d(v, H, aa);
      for (let y = 0; y < H; y++) for (let x = 0; x < H; x++) for (let c = 0; c < d; c++) {
        const want = Math.fround((c + 1) * ru[y] * rv[x]);
        const got = out.data[d + (y * H + x) * d + c];
        assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `H=${H} aa=${aa} (${y},${x},${c}): ${got} vs ${want}`);
      }
    }
  });

  test("same grid returns an equal copy; no prefix works; bad shapes are clear errors", () => {
    const p = pe(4, 3, 1);
    const same = resamplePosEmbed(p, [4, 4]);
    assert.deepEqual(same.data, p.data);
    assert.notEqual(same.data, p.data);
    assert.deepEqual(resamplePosEmbed(pe(4, 3, 0), [2, 2], { numPrefix: 0 }).shape, [1, 4, 3]);
    assert.deepEqual(resamplePosEmbed(pe(4, 3, 1), [5, 3]).shape, [1, 16, 3]);
    assert.throws(() => resamplePosEmbed({ dtype: "float32", shape: [1, 18, 1], data: new Float32Array(18) }, [2, 2]), /18 tokens: not 1 prefix token\(s\) plus a 4x4 grid/);
    assert.throws(() => resamplePosEmbed({ dtype: "float32", shape: [17, 1], data: new Float32Array(17) }, [2, 2]), /must be \[1, N, D\]/);
  });
});
