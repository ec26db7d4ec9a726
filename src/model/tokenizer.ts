// The CLIP BPE tokenizer, as openai/CLIP `clip/simple_tokenizer.py` and `clip.tokenize`:
//   1. basic_clean: ftfy.fix_text, html.unescape twice, strip. ftfy cannot run here and is treated
//      as the identity: it only changes text that needs repair (mojibake, curly quotes, width
//      variants, control characters; it also NFC-normalises), so give clean NFC text;
//   2. whitespace_clean: runs of whitespace -> one space, strip; then lower-case;
//   3. the reference's regex pre-split (the `regex` module's \s is Unicode White_Space, which is
//      what \p{White_Space} matches here; Python's strip also removes U+001C..U+001F);
//   4. each piece as UTF-8 bytes mapped to printable characters (bytes_to_unicode), then BPE over
//      the merges of bpe_simple_vocab_16e6.txt.gz, the vocabulary built exactly as the reference.
// The merges file is the user's copy of the reference's (URL and md5 below), verified on read.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { dataDir } from "../data/paths";
import { htmlUnescape } from "./html-unescape";

export const BPE_FILE = "bpe_simple_vocab_16e6.txt.gz";
/** Where the reference publishes the merges file. */
export const BPE_URL = "https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz";
export const BPE_MD5 = "933b7abbbbde62c36f02f0e6ccde464f";
/** Environment variable naming the merges file. */
export const BPE_ENV = "STUDY_CLIP_BPE";
/** Sequence length of every OpenAI CLIP model. */
export const CONTEXT_LENGTH = 77;
const START = "<|startoftext|>";
const END = "<|endoftext|>";
/** Merges the reference keeps: lines 1 .. 49152-256-2 of the file (line 0 is a version header). */
const NUM_MERGES = 49152 - 256 - 2;

/** bytes_to_unicode: byte -> a printable character (printable Latin-1 bytes map to themselves). */
export function bytesToUnicode(): { bytes: number[]; chars: string[] } {
  const bs: number[] = [];
  for (const [a, b] of [[0x21, 0x7e], [0xa1, 0xac], [0xae, 0xff]]) for (let c = a; c <= b; c++) bs.push(c);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  // In the reference's dict order: the printable bytes first, then the rest (vocabulary ids follow it).
  return { bytes: bs, chars: cs.map((c) => String.fromCodePoint(c)) };
}

/** Characters Python's str.strip removes: Unicode White_Space plus U+001C..U+001F. */
const PY_STRIP = /^[\p{White_Space}\x1c-\x1f]+|[\p{White_Space}\x1c-\x1f]+$/gu;
const pyStrip = (s: string) => s.replace(PY_STRIP, "");

/** basic_clean without ftfy (see the header): html.unescape twice, then strip. */
export function basicClean(text: string): string {
  return pyStrip(htmlUnescape(htmlUnescape(text)));
}

/** whitespace_clean: every run of whitespace becomes one space; strip. */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(/\p{White_Space}+/gu, " "));
}

/** The reference's pre-split (re.IGNORECASE: `i`; unicode classes: `u`). */
const PRE_SPLIT = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/giu;

export interface TokenizeOptions {
  /** Default 77. */
  contextLength?: number;
  /** Keep the first contextLength tokens, the last one replaced by the end token; default false: too long is an error (as the reference). */
  truncate?: boolean;
}

/** Token ids of a batch, zero-padded: [n, contextLength] row-major. */
export interface TokenizedBatch {
  ids: Int32Array;
  shape: [number, number];
}

export class SimpleTokenizer {
  /** Vocabulary entry -> id. */
  readonly encoder = new Map<string, number>();
  /** id -> vocabulary entry. */
  readonly decoder: string[];
  readonly startToken: number;
  readonly endToken: number;
  private readonly ranks = new Map<string, number>();
  private readonly byteEncoder: string[] = new Array<string>(256);
  private readonly byteDecoder = new Map<string, number>();
  private readonly cache = new Map<string, string>([[START, START], [END, END]]);

  /** From the text of the (decompressed) merges file. */
  constructor(mergesText: string) {
    const { bytes, chars } = bytesToUnicode();
    bytes.forEach((b, i) => {
      this.byteEncoder[b] = chars[i];
      this.byteDecoder.set(chars[i], b);
    });
    const merges = mergesText.split("\n").slice(1, NUM_MERGES + 1).map((line) => line.split(/\s+/).filter(Boolean));
    const bad = merges.findIndex((m) => m.length !== 2);
    if (bad >= 0) throw new Error(`BPE merges: line ${bad + 2} is not a pair of symbols ('${merges[bad].join(" ")}')`);
    const vocab = [...chars, ...chars.map((c) => c + "</w>"), ...merges.map(([a, b]) => a + b), START, END];
    vocab.forEach((v, i) => this.encoder.set(v, i)); // later duplicates win, as dict(zip(vocab, range))
    this.decoder = vocab;
    merges.forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i)); // symbols never contain spaces
    this.startToken = this.id(START);
    this.endToken = this.id(END);
  }

  private id(piece: string): number {
    const i = this.encoder.get(piece);
    if (i === undefined) throw new Error(`BPE: '${piece}' is not in the vocabulary`);
    return i;
  }

  /** Vocabulary size (49,408 with the reference's merges). */
  get vocabSize(): number {
    return this.decoder.length;
  }

  /** The reference's bpe(): the token's symbols merged by rank, joined by spaces. */
  bpe(token: string): string {
    const hit = this.cache.get(token);
    if (hit !== undefined) return hit;
    const chars = Array.from(token);
    let word = [...chars.slice(0, -1), chars[chars.length - 1] + "</w>"];
    if (word.length < 2) return token + "</w>";
    for (;;) {
      let best: [string, string] | undefined;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = [word[i], word[i + 1]];
        }
      }
      if (!best) break;
      const [first, second] = best;
      const next: string[] = [];
      let i = 0;
      while (i < word.length) {
        const j = word.indexOf(first, i);
        if (j < 0) {
          next.push(...word.slice(i));
          break;
        }
        next.push(...word.slice(i, j));
        i = j;
        if (i < word.length - 1 && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]);
          i += 1;
        }
      }
      word = next;
      if (word.length === 1) break;
    }
    const out = word.join(" ");
    this.cache.set(token, out);
    return out;
  }

  /** BPE ids of a text, without the start and end tokens (the reference's encode). */
  encode(text: string): number[] {
    const clean = whitespaceClean(basicClean(text)).toLowerCase();
    const ids: number[] = [];
    for (const piece of clean.match(PRE_SPLIT) ?? []) {
      const mapped = Array.from(Buffer.from(piece, "utf8"), (b) => this.byteEncoder[b]).join("");
      for (const sym of this.bpe(mapped).split(" ")) ids.push(this.id(sym));
    }
    return ids;
  }

  /** The reference's decode: '</w>' becomes a space (so "a dog." decodes to "a dog . "). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const piece = this.decoder[id];
      if (piece === undefined) throw new Error(`BPE: token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      for (const ch of piece) {
        const b = this.byteDecoder.get(ch);
        if (b === undefined) throw new Error(`BPE: '${ch}' is not a byte symbol`);
        bytes.push(b);
      }
    }
    return Buffer.from(bytes).toString("utf8").split("</w>").join(" ");
  }

  /** One sequence: [start, ...encode(text), end], truncated as clip.tokenize does when asked. */
  sequence(text: string, opts: TokenizeOptions = {}): number[] {
    const L = opts.contextLength ?? CONTEXT_LENGTH;
    let seq = [this.startToken, ...this.encode(text), this.endToken];
    if (seq.length > L) {
      if (!opts.truncate) throw new Error(`Input ${text} is too long for context length ${L} (${seq.length} tokens; pass truncate: true to keep the first ${L})`);
      seq = seq.slice(0, L);
      seq[L - 1] = this.endToken;
    }
    return seq;
  }

  /** clip.tokenize: [n, contextLength] int32 ids, zero-padded. */
  tokenize(texts: string | readonly string[], opts: TokenizeOptions = {}): TokenizedBatch {
    const list = typeof texts === "string" ? [texts] : texts;
    const L = opts.contextLength ?? CONTEXT_LENGTH;
    const ids = new Int32Array(list.length * L);
    list.forEach((t, i) => ids.set(this.sequence(t, opts), i * L));
    return { ids, shape: [list.length, L] };
  }
}

/**
 * The merges file: `explicit` if given and present, else $STUDY_CLIP_BPE, else
 * <data dir>/bpe_simple_vocab_16e6.txt.gz (data/cache unless STUDY_DATA_DIR says otherwise).
 * Every copy is checked against the same md5, so whichever is found has the same content.
 */
export function resolveMergesPath(explicit?: string): string {
  const env = process.env[BPE_ENV];
  const cached = path.join(dataDir(), BPE_FILE);
  for (const p of [explicit, env, cached]) if (p && fs.existsSync(p)) return path.resolve(p);
  throw new Error(
    `the CLIP BPE merges file ${BPE_FILE} was not found. Looked at:\n` +
      `  1. the path given: ${explicit ?? "(none given)"}\n` +
      `  2. $${BPE_ENV}: ${env ?? "(unset)"}\n` +
      `  3. ${cached}\n` +
      `Download it from ${BPE_URL} (md5 ${BPE_MD5}) to one of these places.`,
  );
}

/** Reads and verifies a merges file (md5 of the .gz as published), returns its text. */
export function readMerges(file: string): string {
  const gz = fs.readFileSync(file);
  const md5 = createHash("md5").update(gz).digest("hex");
  if (md5 !== BPE_MD5) {
    throw new Error(`${file}: md5 ${md5}, expected ${BPE_MD5}: not the reference's ${BPE_FILE} or a damaged copy; download it again from ${BPE_URL}`);
  }
  return gunzipSync(gz).toString("utf8");
}

const loaded = new Map<string, SimpleTokenizer>();

/** The reference tokenizer from the user's merges file (see resolveMergesPath); one instance per file. */
export function loadTokenizer(file?: string): SimpleTokenizer {
  const p = resolveMergesPath(file);
  let t = loaded.get(p);
  if (!t) {
    t = new SimpleTokenizer(readMerges(p));
    loaded.set(p, t);
  }
  return t;
}
