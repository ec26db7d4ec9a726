// Hand-written wasm SIMD kernels that run on tfjs-backend-wasm's own heap.
//
// The stock wasm backend runs one scalar loop per elementwise op, so GELU and LayerNorm cost
// 5-12 passes over their tensor each way (plus a libm erf/exp per element), and it has no fast
// path for small batched matmuls (attention) or strided copies. These kernels do GELU and
// LayerNorm, forward and backward, in one or two f32x4 passes; a batched matmul in one call; sums
// over rows; and block copies. They read and write tensors where the backend keeps them: the
// module imports the backend's WebAssembly.Memory (shared in the threaded build), so arguments
// are byte offsets into that heap and nothing is copied in or out. Each call runs on its calling
// thread (wasm-simd-pool.ts splits matmuls and GELU over worker threads). The text below is the
// source, assembled once per process when the backend starts.
//
// Elementwise kernels need n >= 4 and are out of place: the last vector is the one ending at
// n - 1 (it may overlap the previous one, which only rewrites equal values). Row kernels need
// the row length d to be a multiple of 4. Callers check both (see wasm-kernels.ts).

/** A WebAssembly.Memory, typed locally (the project's `lib` has no DOM, where WebAssembly is declared). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}

/** Whether `memory` is shared between threads (the threaded build's heap). */
export function isShared(memory: WasmMemory): boolean {
  return typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
}

/** The part of the WebAssembly API the runtime uses, typed locally (see WasmMemory). */
export interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: object; module: object }>;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
export const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** The exports of the module; pointers are byte offsets into the backend's heap. */
export interface SimdKernels {
  /** y = x * Phi(x), n elements. */
  gelu(x: number, y: number, n: number): void;
  /** dx = dy * (Phi(x) + x * phi(x)), n elements. */
  geluGrad(x: number, dy: number, dx: number, n: number): void;
  /** y = (x - mean) / sqrt(var + eps) * w + b over rows of length d (biased variance). */
  layerNorm(x: number, w: number, b: number, y: number, rows: number, d: number, eps: number): void;
  /** dx of LayerNorm, and dw = sum_rows dy * xhat, db = sum_rows dy (statistics recomputed from x). */
  layerNormGrad(dy: number, x: number, w: number, dx: number, dw: number, db: number, rows: number, d: number, eps: number): void;
  /** out[j] = sum_r x[r, j] for x [rows, d]. */
  sumRows(x: number, out: number, rows: number, d: number): void;
  /** Copies `count` blocks of `bytes` bytes: block c from src + c * srcStride to dst + c * dstStride. */
  copyBlocks(src: number, srcStride: number, dst: number, dstStride: number, count: number, bytes: number): void;
  /**
   * out[s] = a[s] b[s] for b [n, k, nc], out [n, m, nc] and a's slices m x k with element (i, q) at
   * byte aRow * i + aK * q (4k and 4 for [n, m, k]; 4 and 4m for a^T stored as [n, k, m]). Runs in
   * k-blocks of kc (kc = k: none; kc < k only when m % 4 = nc % 8 = 0). Needs m >= 4, nc >= 8, k >= 1.
   */
  batchMatMul(a: number, b: number, out: number, n: number, m: number, k: number, nc: number, aRow: number, aK: number, kc: number): void;
}

/** A float constant in all four lanes. */
const splat = (c: number): string => `(v128.const f32x4 ${c} ${c} ${c} ${c})`;

/** Horner's rule: ((c0 * t + c1) * t + c2) ... for v128 expression t (a local's name). */
function horner(t: string, coefs: number[]): string {
  let e = splat(coefs[0]);
  for (const c of coefs.slice(1)) e = `(f32x4.add (f32x4.mul ${e} (local.get ${t})) ${splat(c)})`;
  return e;
}

/** Load and store of a v128 at byte offset base + off (both i32 expressions). */
const load = (addr: string): string => `(v128.load ${addr})`;
const at = (base: string, off: string): string => `(i32.add (local.get ${base}) (local.get ${off}))`;
/** Byte address of column offset $k in the row at byte offset $row of the [rows, d] tensor at base. */
const inRow = (base: string): string => `(i32.add (i32.add (local.get ${base}) (local.get $row)) (local.get $k))`;

/** Sum of the four lanes of a v128 local, as f32: (l0 + l1) + (l2 + l3). */
const hsum = (v: string): string =>
  `(f32.add (f32.add (f32x4.extract_lane 0 (local.get ${v})) (f32x4.extract_lane 1 (local.get ${v}))) ` +
  `(f32.add (f32x4.extract_lane 2 (local.get ${v})) (f32x4.extract_lane 3 (local.get ${v}))))`;

/**
 * A loop over the n elements of an elementwise kernel, 4 at a time; `body` sees the byte offset
 * of the current vector in local $o. The last vector starts at n - 4.
 */
const elementwise = (body: string): string => `
    (local.set $i (i32.const 0))
    (loop $next
      (local.set $o (i32.shl
        (select (local.get $i) (i32.sub (local.get $n) (i32.const 4))
          (i32.lt_u (local.get $i) (i32.sub (local.get $n) (i32.const 4))))
        (i32.const 2)))
      ${body}
      (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $n))))`;

/** A loop over the columns of a row: local $k runs over byte offsets 0, 16, ..., 4d - 16. */
const columns = (body: string): string => `
      (local.set $k (i32.const 0))
      (loop $col
        ${body}
        (br_if $col (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 16))) (local.get $rowBytes))))`;

/** Sets locals $mean and $rstd (splatted) for the row at byte offset $row of x. */
const rowStatistics = `
      (local.set $acc (v128.const i32x4 0 0 0 0))
      ${columns(`(local.set $acc (f32x4.add (local.get $acc) ${load(inRow("$x"))}))`)}
      (local.set $mean (f32x4.splat (f32.div ${hsum("$acc")} (local.get $df))))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      ${columns(`(local.set $c (f32x4.sub ${load(inRow("$x"))} (local.get $mean)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $c) (local.get $c))))`)}
      (local.set $rstd (f32x4.splat (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div ${hsum("$acc")} (local.get $df)) (local.get $eps))))))`;

/** Eigen's float rational approximation of erf (absolute error ~1e-7 in float32). */
const ERF_P = [-2.72614225801306e-10, 2.77068142495902e-8, -2.10102402082508e-6, -5.69250639462346e-5, -7.34990630326855e-4, -2.95459980854025e-3, -1.60960333262415e-2];
const ERF_Q = [-1.45660718464996e-5, -2.13374055278905e-4, -1.68282697438203e-3, -7.37332916720468e-3, -1.42647390514189e-2];
/** Cephes expf: exp(r) = 1 + r + r^2 * P(r) on |r| <= ln2 / 2. */
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

// The math below is spliced into each kernel's loop rather than called: V8 (Node 20) does not
// inline wasm calls, and a call per vector halves the throughput.

/** Locals used by `cdf` and `expNonPositive`. */
const MATH_LOCALS = "(local $e v128) (local $e2 v128) (local $t v128) (local $m v128) (local $r v128)";

/**
 * Sets local `out` to Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF, for local x.
 * erf is Eigen's rational approximation, its argument clamped to [-4, 4] (erf is +-1 there in float32).
 */
const cdf = (out: string, x: string): string => `
      (local.set $e (f32x4.min (f32x4.max (f32x4.mul (local.get ${x}) ${splat(SQRT1_2)}) ${splat(-4)}) ${splat(4)}))
      (local.set $e2 (f32x4.mul (local.get $e) (local.get $e)))
      (local.set ${out} (f32x4.add ${splat(0.5)} (f32x4.mul ${splat(0.5)}
        (f32x4.div (f32x4.mul (local.get $e) ${horner("$e2", ERF_P)}) ${horner("$e2", ERF_Q)}))))`;

/**
 * Sets local `out` to exp(t) for the v128 expression t <= 0: t = m ln2 + r, exp(t) = 2^m exp(r),
 * with t clamped at -87.3 so that 2^m stays a normal float.
 */
const expNonPositive = (out: string, t: string): string => `
      (local.set $t (f32x4.max ${t} ${splat(-87.33654)}))
      (local.set $m (f32x4.nearest (f32x4.mul (local.get $t) ${splat(Math.LOG2E)})))
      (local.set $r (f32x4.sub (f32x4.sub (local.get $t) (f32x4.mul (local.get $m) ${splat(0.693359375)}))
        (f32x4.mul (local.get $m) ${splat(-2.12194440e-4)})))
      (local.set ${out} (f32x4.mul
        (f32x4.add (f32x4.add (f32x4.mul ${horner("$r", EXP_P)} (f32x4.mul (local.get $r) (local.get $r))) (local.get $r)) ${splat(1)})
        (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $m)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))`;

/** The module's text; `shared` matches the backend's memory (shared in the threaded build). */
export function simdKernelsWat(shared: boolean): string {
  const memory = shared ? "(memory 0 65536 shared)" : "(memory 0)";
  return `(module
  (import "env" "memory" ${memory})

  (func (export "gelu") (param $x i32) (param $y i32) (param $n i32) (local $i i32) (local $o i32) (local $v v128) (local $cdf v128) ${MATH_LOCALS}
    ${elementwise(`(local.set $v ${load(at("$x", "$o"))})
      ${cdf("$cdf", "$v")}
      (v128.store ${at("$y", "$o")} (f32x4.mul (local.get $v) (local.get $cdf)))`)})

  (func (export "geluGrad") (param $x i32) (param $dy i32) (param $dx i32) (param $n i32)
    (local $i i32) (local $o i32) (local $v v128) (local $cdf v128) (local $exp v128) ${MATH_LOCALS}
    ${elementwise(`(local.set $v ${load(at("$x", "$o"))})
      ${cdf("$cdf", "$v")}
      ${expNonPositive("$exp", "(f32x4.mul (f32x4.mul (local.get $v) (local.get $v)) " + splat(-0.5) + ")")}
      ;; dy * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
      (v128.store ${at("$dx", "$o")} (f32x4.mul ${load(at("$dy", "$o"))}
        (f32x4.add (local.get $cdf) (f32x4.mul (local.get $v) (f32x4.mul (local.get $exp) ${splat(INV_SQRT_2PI)})))))`)})

  (func (export "layerNorm") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $rows i32) (param $d i32) (param $eps f32)
    (local $r i32) (local $row i32) (local $k i32) (local $rowBytes i32) (local $df f32)
    (local $acc v128) (local $c v128) (local $mean v128) (local $rstd v128)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $df (f32.convert_i32_u (local.get $d)))
    (loop $rowLoop
      (local.set $row (i32.mul (local.get $r) (local.get $rowBytes)))
      ${rowStatistics}
      ${columns(`(v128.store ${inRow("$y")}
          (f32x4.add
            (f32x4.mul
              (f32x4.mul (f32x4.sub ${load(inRow("$x"))} (local.get $mean)) (local.get $rstd))
              ${load(at("$w", "$k"))})
            ${load(at("$b", "$k"))}))`)}
      (br_if $rowLoop (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rows)))))

  (func (export "layerNormGrad") (param $dy i32) (param $x i32) (param $w i32) (param $dx i32) (param $dw i32) (param $db i32)
    (param $rows i32) (param $d i32) (param $eps f32)
    (local $r i32) (local $row i32) (local $k i32) (local $rowBytes i32) (local $df f32)
    (local $acc v128) (local $c v128) (local $mean v128) (local $rstd v128)
    (local $xh v128) (local $dyv v128) (local $g v128) (local $sg v128) (local $sgx v128) (local $mg v128) (local $mgx v128)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $df (f32.convert_i32_u (local.get $d)))
    (memory.fill (local.get $dw) (i32.const 0) (local.get $rowBytes))
    (memory.fill (local.get $db) (i32.const 0) (local.get $rowBytes))
    (loop $rowLoop
      (local.set $row (i32.mul (local.get $r) (local.get $rowBytes)))
      ${rowStatistics}
      ;; sums of g = dy * w and g * xhat over the row; dw += dy * xhat, db += dy.
      (local.set $sg (v128.const i32x4 0 0 0 0))
      (local.set $sgx (v128.const i32x4 0 0 0 0))
      ${columns(`(local.set $xh (f32x4.mul (f32x4.sub ${load(inRow("$x"))} (local.get $mean)) (local.get $rstd)))
        (local.set $dyv ${load(inRow("$dy"))})
        (local.set $g (f32x4.mul (local.get $dyv) ${load(at("$w", "$k"))}))
        (local.set $sg (f32x4.add (local.get $sg) (local.get $g)))
        (local.set $sgx (f32x4.add (local.get $sgx) (f32x4.mul (local.get $g) (local.get $xh))))
        (v128.store ${at("$dw", "$k")} (f32x4.add ${load(at("$dw", "$k"))} (f32x4.mul (local.get $dyv) (local.get $xh))))
        (v128.store ${at("$db", "$k")} (f32x4.add ${load(at("$db", "$k"))} (local.get $dyv)))`)}
      (local.set $mg (f32x4.splat (f32.div ${hsum("$sg")} (local.get $df))))
      (local.set $mgx (f32x4.splat (f32.div ${hsum("$sgx")} (local.get $df))))
      ;; dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
      ${columns(`(local.set $xh (f32x4.mul (f32x4.sub ${load(inRow("$x"))} (local.get $mean)) (local.get $rstd)))
        (local.set $g (f32x4.mul ${load(inRow("$dy"))} ${load(at("$w", "$k"))}))
        (v128.store ${inRow("$dx")}
          (f32x4.mul (local.get $rstd) (f32x4.sub (f32x4.sub (local.get $g) (local.get $mg)) (f32x4.mul (local.get $xh) (local.get $mgx)))))`)}
      (br_if $rowLoop (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rows)))))

  (func (export "sumRows") (param $x i32) (param $out i32) (param $rows i32) (param $d i32)
    (local $r i32) (local $row i32) (local $k i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 2)))
    (memory.fill (local.get $out) (i32.const 0) (local.get $rowBytes))
    (loop $rowLoop
      (local.set $row (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $rowBytes))))
      ${columns(`(v128.store ${at("$out", "$k")} (f32x4.add ${load(at("$out", "$k"))} ${load(at("$row", "$k"))}))`)}
      (br_if $rowLoop (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rows)))))
  ;; Each slice in blocks of 4 rows x 8 columns held in eight accumulators; per k, two vectors of b
  ;; and four broadcast scalars of a (a's layout is given by its strides, so a^T b needs no
  ;; transpose). The last row (column) block starts at m - 4 (nc - 8): it recomputes some outputs
  ;; of the previous block, with the same summation order. With kc < k the products run in
  ;; k-blocks of kc (operand panels that stay in cache), adding into the output: that needs blocks
  ;; that do not overlap (m % 4 = nc % 8 = 0).
  (func (export "batchMatMul") (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $m i32) (param $k i32) (param $nc i32)
    (param $aRow i32) (param $aK i32) (param $kc i32)
    (local $s i32) (local $i i32) (local $j i32) (local $kk i32) (local $i0 i32) (local $j0 i32) (local $k0 i32)
    (local $rowA2 i32) (local $rowA3 i32) (local $rowB i32) (local $pa i32) (local $pb i32) (local $po i32)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $c4 v128) (local $c5 v128) (local $c6 v128) (local $c7 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (local.set $rowA2 (i32.shl (local.get $aRow) (i32.const 1)))
    (local.set $rowA3 (i32.mul (local.get $aRow) (i32.const 3)))
    (local.set $rowB (i32.shl (local.get $nc) (i32.const 2)))
    (loop $slice
      (local.set $k0 (i32.const 0))
      (loop $kblock
        (local.set $i (i32.const 0))
        (loop $rows
          (local.set $i0 (select (local.get $i) (i32.sub (local.get $m) (i32.const 4))
            (i32.lt_u (local.get $i) (i32.sub (local.get $m) (i32.const 4)))))
          (local.set $j (i32.const 0))
          (loop $cols
            (local.set $j0 (select (local.get $j) (i32.sub (local.get $nc) (i32.const 8))
              (i32.lt_u (local.get $j) (i32.sub (local.get $nc) (i32.const 8)))))
            (local.set $po (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $i0) (local.get $nc)) (local.get $j0)) (i32.const 2))))
            (if (i32.eqz (local.get $k0))
              (then ${[0, 1, 2, 3, 4, 5, 6, 7].map((c) => `(local.set $c${c} (v128.const i32x4 0 0 0 0))`).join(" ")})
              (else
                ${[0, 1, 2, 3].map((r) => `(local.set $c${2 * r} (v128.load ${r ? `(i32.add (local.get $po) (i32.mul (local.get $rowB) (i32.const ${r})))` : "(local.get $po)"}))
                (local.set $c${2 * r + 1} (v128.load offset=16 ${r ? `(i32.add (local.get $po) (i32.mul (local.get $rowB) (i32.const ${r})))` : "(local.get $po)"}))`).join("\n                ")}))
            (local.set $pa (i32.add (local.get $a) (i32.add (i32.mul (local.get $i0) (local.get $aRow)) (i32.mul (local.get $k0) (local.get $aK)))))
            (local.set $pb (i32.add (local.get $b) (i32.shl (i32.add (i32.mul (local.get $k0) (local.get $nc)) (local.get $j0)) (i32.const 2))))
            ;; kk = min(kc, k - k0) products in this k-block
            (local.set $kk (select (local.get $kc) (i32.sub (local.get $k) (local.get $k0))
              (i32.lt_u (local.get $kc) (i32.sub (local.get $k) (local.get $k0)))))
            (loop $inner
              (local.set $b0 (v128.load (local.get $pb)))
              (local.set $b1 (v128.load offset=16 (local.get $pb)))
              ${[["(local.get $pa)", 0], ["(i32.add (local.get $pa) (local.get $aRow))", 2], ["(i32.add (local.get $pa) (local.get $rowA2))", 4], ["(i32.add (local.get $pa) (local.get $rowA3))", 6]]
                .map(([addr, c]) => `(local.set $x (v128.load32_splat ${addr}))
              (local.set $c${c} (f32x4.add (local.get $c${c}) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c${(c as number) + 1} (f32x4.add (local.get $c${(c as number) + 1}) (f32x4.mul (local.get $x) (local.get $b1))))`).join("\n              ")}
              (local.set $pa (i32.add (local.get $pa) (local.get $aK)))
              (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
              (br_if $inner (local.tee $kk (i32.sub (local.get $kk) (i32.const 1)))))
            ${[0, 1, 2, 3].map((r) => `(v128.store (local.get $po) (local.get $c${2 * r}))
            (v128.store offset=16 (local.get $po) (local.get $c${2 * r + 1}))${r < 3 ? "\n            (local.set $po (i32.add (local.get $po) (local.get $rowB)))" : ""}`).join("\n            ")}
            (br_if $cols (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $nc))))
          (br_if $rows (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $m))))
        (br_if $kblock (i32.lt_u (local.tee $k0 (i32.add (local.get $k0) (local.get $kc))) (local.get $k))))
      (local.set $a (i32.add (local.get $a) (i32.shl (i32.mul (local.get $m) (local.get $k)) (i32.const 2))))
      (local.set $b (i32.add (local.get $b) (i32.mul (local.get $k) (local.get $rowB))))
      (local.set $out (i32.add (local.get $out) (i32.mul (local.get $m) (local.get $rowB))))
      (br_if $slice (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $n)))))

  (func (export "copyBlocks") (param $src i32) (param $srcStride i32) (param $dst i32) (param $dstStride i32) (param $count i32) (param $bytes i32)
    (block $done
      (br_if $done (i32.eqz (local.get $count)))
      (loop $next
        (memory.copy (local.get $dst) (local.get $src) (local.get $bytes))
        (local.set $src (i32.add (local.get $src) (local.get $srcStride)))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
        (br_if $next (local.tee $count (i32.sub (local.get $count) (i32.const 1)))))))
)`;
}

/**
 * Assembles the module and instantiates it on `memory` (the wasm backend's heap); returns its
 * exports and the compiled module (for worker threads). Async because the assembler (wabt)
 * starts asynchronously; instantiation itself is synchronous.
 */
export async function loadSimdKernels(memory: WasmMemory): Promise<{ kernels: SimdKernels; module: object }> {
  const shared = isShared(memory);
  const wabt = await (require("wabt") as () => Promise<WabtModule>)();
  const features = { simd: true, threads: shared, bulk_memory: true, sat_float_to_int: true };
  const parsed = wabt.parseWat("study-simd-kernels.wat", simdKernelsWat(shared), features);
  try {
    parsed.validate(features);
    const { buffer } = parsed.toBinary({});
    const module = new wasmApi.Module(buffer);
    const instance = new wasmApi.Instance(module, { env: { memory } });
    return { kernels: instance.exports as unknown as SimdKernels, module };
  } finally {
    parsed.destroy();
  }
}

/** The part of wabt's API used here. */
interface WabtModule {
  parseWat(filename: string, text: string, features: Record<string, boolean>): {
    validate(features: Record<string, boolean>): void;
    toBinary(opts: object): { buffer: Uint8Array };
    destroy(): void;
  };
}
