// One seeded generator for every random choice outside tfjs kernels (crops, flips, shuffles,
// initialisation seeds). tfjs ops take per-op integer seeds: draw them with `rng.seed()`.

/** cyrb128: hashes a string seed into four 32-bit words (the generator's initial state). */
function hashSeed(seed: string): [number, number, number, number] {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < seed.length; i++) {
    const k = seed.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  return [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0];
}

/** sfc32: small, fast, 128-bit state that serialises as four integers. */
export class Rng {
  private s: [number, number, number, number];
  private spare: number | undefined;

  constructor(readonly initialSeed: number | string) {
    this.s = hashSeed(String(initialSeed));
    for (let i = 0; i < 12; i++) this.u32(); // warm-up, as recommended for sfc32
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    let [a, b, c, d] = this.s;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    this.s = [a, b, c, d];
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, caching the second value). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A 31-bit integer seed for a tfjs op. */
  seed(): number {
    return this.u32() >>> 1;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** An independent generator derived from this seed and a label (stable across runs). */
  fork(label: string): Rng {
    return new Rng(`${this.initialSeed}/${label}`);
  }

  /** Serialisable state, for resuming a run mid-epoch. */
  state(): RngState {
    return { seed: this.initialSeed, s: [...this.s], spare: this.spare ?? null };
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(state.seed);
    r.s = [state.s[0], state.s[1], state.s[2], state.s[3]];
    r.spare = state.spare ?? undefined;
    return r;
  }
}

export interface RngState {
  seed: number | string;
  s: number[];
  spare: number | null;
}
