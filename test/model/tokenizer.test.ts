import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { promises as fsp, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { CLIP_SKIP, MERGES, tinyJson } from "../support/clip-fixture";
import { BPE_ENV, BPE_MD5, BPE_URL, bytesToUnicode, loadTokenizer, readMerges, resolveMergesPath, SimpleTokenizer } from "../../src/model/tokenizer";

const SKIP = CLIP_SKIP;
const tok = (): SimpleTokenizer => loadTokenizer(MERGES);

/** Id of a single printable-ASCII character followed by the end-of-word mark: 256 + its index among the printable bytes. */
const charEnd = (c: string) => 256 + (c.charCodeAt(0) - 0x21);

describe("CLIP tokenizer: the reference fixture's cases", { skip: SKIP }, () => {
  const cases = SKIP ? [] : tinyJson().tokenizer;
  for (const c of cases) {
    test(`${JSON.stringify(c.text)}: BPE ids and padded sequence`, () => {
      assert.deepEqual(tok().encode(c.text), c.bpe);
      const { ids, shape } = tok().tokenize(c.text);
      assert.deepEqual(shape, [1, 77]);
      assert.deepEqual(Array.from(ids), c.ids);
    });
  }
});

describe("CLIP tokenizer: vocabulary built as the reference", { skip: SKIP }, () => {
  test("bytes, bytes + </w>, merges in file order, then the two special tokens", () => {
    const t = tok();
    const { chars } = bytesToUnicode();
    assert.equal(chars.length, 256);
    assert.equal(new Set(chars).size, 256);
    assert.equal(t.vocabSize, 49408);
    assert.equal(t.decoder[0], "!");
    assert.equal(t.decoder[64], "a");
    assert.equal(t.decoder[256 + 64], "a</w>");
    assert.equal(t.startToken, 49406);
    assert.equal(t.endToken, 49407);
    assert.equal(t.decoder[49406], "<|startoftext|>");
    // A merge's id is 512 + its line in the file minus the version header.
    const lines = gunzipSync(readFileSync(MERGES)).toString("utf8").split("\n");
    const rank = lines.indexOf("' s</w>") - 1;
    assert.ok(rank >= 0);
    assert.deepEqual(t.encode("'s"), [512 + rank]);
    assert.equal(t.decoder[512 + rank], "'s</w>");
    assert.equal(t.decoder[49405], lines[48894].split(" ").join(""), "the last merge kept is line 48894");
  });
});

// Expected ids derived by hand: a lone printable ASCII character c is the symbol c</w>, whose id
// is 256 + (c - '!'); digits are split one by one ([\p{N}]); cleaning and lower-casing come first.
const FIRST_PRINCIPLES: [what: string, text: string, ids: number[]][] = [
  ["a lone letter", "a", [charEnd("a")]],
  ["lower-cased", "A", [charEnd("a")]],
  ["stripped", "  A  ", [charEnd("a")]],
  ["punctuation", "!", [charEnd("!")]],
  ["digits one by one", "123", [charEnd("1"), charEnd("2"), charEnd("3")]],
  ["named entity", "&lt;", [charEnd("<")]],
  ["html.unescape twice", "&amp;lt;", [charEnd("<")]],
  ["decimal reference", "&#60;", [charEnd("<")]],
  ["hex reference, then lower-cased", "&#x41;", [charEnd("a")]],
  ["Unicode spaces stripped (U+00A0, U+3000)", "\u00a0a\u3000", [charEnd("a")]],
  ["U+001C..U+001F stripped as Python's str.strip does", "\x1ca\x1f", [charEnd("a")]],
  ["U+2028 separates words", "a\u2028b", [charEnd("a"), charEnd("b")]],
  ["the start token written out", "<|startoftext|>", [49406]],
  ["the end token, case-insensitively", "<|ENDOFTEXT|>", [49407]],
  ["empty", "", []],
  ["only whitespace", " \t\n ", []],
];

describe("CLIP tokenizer: cases derived from first principles", { skip: SKIP }, () => {
  for (const [what, text, ids] of FIRST_PRINCIPLES) {
    test(`${what}: ${JSON.stringify(text)}`, () => assert.deepEqual(tok().encode(text), ids));
  }
});

// Each pair must tokenize identically: cleaning (whitespace, case, HTML) happens before BPE.
const EQUIVALENT: [what: string, a: string, b: string][] = [
  ["whitespace and case", "  A  Photo ", "a photo"],
  ["tabs and newlines", "A\tPHOTO\n\nof", "a photo of"],
  ["&amp;", "fish &amp; chips", "fish & chips"],
  ["&quot;", "&quot;hi&quot;", '"hi"'],
  ["&eacute;", "caf&eacute;", "café"],
  ["legacy entity without semicolon", "x&ampy", "x&y"],
  ["&#128; is the euro sign (Windows-1252 remap)", "&#128;", "\u20ac"],
  ["unknown entity kept", "&nosuch;", "& nosuch ;"],
  ["no-break and ideographic spaces", "a\u00a0photo\u3000of", "a photo of"],
];

describe("CLIP tokenizer: cleaning equivalences", { skip: SKIP }, () => {
  for (const [what, a, b] of EQUIVALENT) {
    test(`${what}: ${JSON.stringify(a)} ~ ${JSON.stringify(b)}`, () => assert.deepEqual(tok().encode(a), tok().encode(b)));
  }
  test("decode follows the reference (end-of-word marks become spaces)", () => {
    assert.equal(tok().decode(tok().encode("A photo of a dog.")), "a photo of a dog . ");
  });
});

describe("CLIP tokenizer: context length and truncation", { skip: SKIP }, () => {
  const words = (n: number) => "a ".repeat(n); // n tokens of 'a</w>'
  const A = charEnd("a");
  test("75 tokens fit exactly: start, 75 tokens, end", () => {
    const ids = Array.from(tok().tokenize(words(75)).ids);
    assert.equal(ids.length, 77);
    assert.deepEqual(ids, [49406, ...new Array(75).fill(A), 49407]);
  });
  test("76 tokens are too long unless truncated; truncation keeps 76 and ends with the end token", () => {
    assert.throws(() => tok().tokenize(words(76)), /too long for context length 77/);
    const ids = Array.from(tok().tokenize(words(76), { truncate: true }).ids);
    assert.deepEqual(ids, [49406, ...new Array(75).fill(A), 49407]);
  });
  test("300 tokens truncate to 77 the same way", () => {
    const ids = Array.from(tok().tokenize(words(300), { truncate: true }).ids);
    assert.equal(ids.length, 77);
    assert.equal(ids[0], 49406);
    assert.equal(ids[76], 49407);
    assert.ok(ids.slice(1, 76).every((v) => v === A));
  });
  test("a batch is [n, 77], zero-padded, one row per text", () => {
    const { ids, shape } = tok().tokenize(["a", "", "a a"]);
    assert.deepEqual(shape, [3, 77]);
    assert.deepEqual(Array.from(ids.subarray(0, 4)), [49406, A, 49407, 0]);
    assert.deepEqual(Array.from(ids.subarray(77, 80)), [49406, 49407, 0]);
    assert.deepEqual(Array.from(ids.subarray(154, 159)), [49406, A, A, 49407, 0]);
    assert.ok(ids.subarray(159).every((v) => v === 0));
  });
  test("another context length", () => {
    assert.deepEqual(Array.from(tok().tokenize(words(5), { contextLength: 4, truncate: true }).ids), [49406, A, A, 49407]);
  });
});

describe("CLIP tokenizer: the merges file", () => {
  let dir = "";
  const saved: Record<string, string | undefined> = {};
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "bpe-"));
    for (const k of [BPE_ENV, "STUDY_DATA_DIR"]) saved[k] = process.env[k];
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test("missing everywhere: one error naming the three places and the URL", () => {
    const given = path.join(dir, "given.txt.gz");
    process.env[BPE_ENV] = path.join(dir, "from-env.txt.gz");
    process.env.STUDY_DATA_DIR = path.join(dir, "data");
    assert.throws(
      () => resolveMergesPath(given),
      (e: Error) => {
        for (const s of [given, path.join(dir, "from-env.txt.gz"), path.join(dir, "data", "bpe_simple_vocab_16e6.txt.gz"), BPE_URL, BPE_ENV, BPE_MD5]) assert.ok(e.message.includes(s), `${s} not in: ${e.message}`);
        return true;
      },
    );
    delete process.env[BPE_ENV];
    assert.throws(() => resolveMergesPath(), /\(none given\)[\s\S]*\(unset\)/);
  });

  test("found in order: the given path, then the environment variable, then the data dir", { skip: SKIP }, async () => {
    const data = path.join(dir, "data2");
    await fsp.mkdir(data, { recursive: true });
    const cached = path.join(data, "bpe_simple_vocab_16e6.txt.gz");
    await fsp.copyFile(MERGES, cached);
    process.env.STUDY_DATA_DIR = data;
    delete process.env[BPE_ENV];
    assert.equal(resolveMergesPath(path.join(dir, "absent.gz")), cached);
    process.env[BPE_ENV] = MERGES;
    assert.equal(resolveMergesPath(), path.resolve(MERGES));
    assert.equal(resolveMergesPath(cached), cached);
  });

  test("a corrupt or foreign file is refused by its md5, naming the file and where to get it", { skip: SKIP }, async () => {
    const foreign = path.join(dir, "foreign.txt.gz");
    await fsp.writeFile(foreign, gzipSync("#version: 0.2\na b\n"));
    const truncated = path.join(dir, "truncated.txt.gz");
    await fsp.writeFile(truncated, readFileSync(MERGES).subarray(0, 100_000));
    for (const f of [foreign, truncated]) {
      assert.throws(() => readMerges(f), (e: Error) => e.message.startsWith(f) && e.message.includes(`expected ${BPE_MD5}`) && e.message.includes(BPE_URL));
      assert.throws(() => loadTokenizer(f), /md5/);
    }
  });

  test("the real file verifies and is loaded once per path", { skip: SKIP }, () => {
    assert.match(readMerges(MERGES).split("\n")[0], /#version: 0.2$/); // the header line the reference skips
    assert.equal(loadTokenizer(MERGES), loadTokenizer(MERGES));
  });
});
