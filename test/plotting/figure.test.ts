import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { browserRunning, closeBrowser } from "../../src/plotting/browser";
import { Figure, liveHtml, plain, renderFigure, standaloneHtml } from "../../src/plotting/figure";

after(closeBrowser);

const fig: Figure = {
  data: [
    { type: "scatter", mode: "lines+markers", name: "train", x: [0, 1, 2, 3], y: new Float32Array([2.3, 1.1, 0.7, 0.5]) },
    { type: "bar", name: "eval", x: [0, 1, 2, 3], y: [0.4, 0.6, 0.7, 0.75] },
  ],
  layout: { title: "loss", xaxis: { title: "step" }, yaxis: { title: "value" } },
};
const sha = (b: Uint8Array | string) => crypto.createHash("sha256").update(b).digest("hex");
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

test("plain() turns typed arrays and non-finite numbers into JSON", () => {
  assert.deepEqual(plain({ y: new Float32Array([1, NaN, Infinity]), z: [new Int32Array([2])], u: undefined }), { y: [1, null, null], z: [[2]] });
});

test("a figure renders to PNG (file at scale 2, inline at 1), SVG with its titles, and standalone HTML", async () => {
  const r = await renderFigure(fig, { width: 500, height: 300 });
  assert.deepEqual([...r.png.slice(0, 8)], PNG_MAGIC);
  const dims = (b: Uint8Array) => [Buffer.from(b).readUInt32BE(16), Buffer.from(b).readUInt32BE(20)];
  assert.deepEqual(dims(r.png), [1000, 600]);
  assert.deepEqual(dims(r.inlinePng), [500, 300]);
  assert.ok(r.svg.startsWith("<svg") && r.svg.endsWith("</svg>"), "an SVG document");
  for (const t of ["loss", "step", "value", "train", "eval"]) assert.ok(r.svg.includes(`>${t}<`), `SVG shows '${t}'`);
  assert.ok(r.html.startsWith("<!DOCTYPE html>"));
  assert.ok(r.html.includes("plotly.js v4.1.2"), "plotly is inlined");
  // (assert.ok, not assert.match: a failing match would print the 4.8 MB page)
  assert.ok(!/<script[^>]+src=/.test(r.html), "no external script");
  assert.ok(r.html.includes('Plotly.newPlot("figure"'), "the page draws the figure");
});

test("PNG and SVG bytes are identical across renders and across browser launches", async () => {
  const a = await renderFigure(fig);
  const b = await renderFigure(fig);
  await closeBrowser();
  assert.equal(browserRunning(), false);
  const c = await renderFigure(fig);
  assert.equal(sha(a.png), sha(b.png));
  assert.equal(sha(a.png), sha(c.png));
  assert.equal(sha(a.svg), sha(c.svg));
  const other = await renderFigure({ ...fig, layout: { title: "other" } });
  assert.notEqual(sha(other.png), sha(a.png), "a different figure gives different pixels");
});

test("JSON inside HTML cannot close the script element", () => {
  const html = standaloneHtml({ data: [{ type: "scatter", name: "</script><b>x", x: [1], y: [1] }] }, "t");
  const tail = html.slice(html.lastIndexOf("<script>"));
  assert.equal(tail.split("</script>").length, 2, "only the real closing tag");
  assert.ok(tail.includes("\\u003c/script>"));
});

test("live HTML carries the bundle only when asked, with define hidden, and a PNG fallback", () => {
  const png = new Uint8Array(PNG_MAGIC);
  const first = liveHtml(fig, "fig-a", png, true);
  const later = liveHtml(fig, "fig-b", png, false);
  assert.ok(first.includes("plotly.js v4.1.2") && first.includes("window.define = undefined"));
  assert.ok(!later.includes("plotly.js v4.1.2"));
  assert.ok(later.includes('"files/node_modules/plotly.js-dist-min/plotly.min.js"'), "later figures load the bundle from the server when the page has none (a reload)");
  assert.ok(later.includes('id="fig-b"') && later.includes("data:image/png;base64,iVBORw0KGgo"));
});

test("rendering a non-figure is a clear error", async () => {
  await assert.rejects(renderFigure({ traces: [] } as unknown as Figure, {}, "bad"), /figure 'bad': expected \{ data: \[traces\], layout\? \}/);
});

test("figure files written by the context are atomic and complete", async () => {
  const { notebook } = await import("../../src/notebook");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fig-"));
  const shown: string[] = [];
  const saved = process.env.STUDY_FIGURES_DIR;
  process.env.STUDY_FIGURES_DIR = dir;
  try {
    const sink = {
      bundle: (d: Record<string, string | Uint8Array>) =>
        shown.push(Object.entries(d).map(([k, v]) => (k === "image/png" ? "png" : k === "text/html" ? `html:${v.length}` : `${k}:${String(v)}`)).join(" + ")),
    };
    const headless = await notebook("t", "smoke", { display: sink, headless: true, backend: false });
    await headless.figure("curve", fig);
    headless.table("rows", [{ a: 1, b: 0.123456789 }, { a: 2, b: 2 }]);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["curve.html", "curve.png", "curve.svg", "rows.csv", "rows.md"]);
    assert.deepEqual(shown.slice(0, 1), ["png"]);
    // Markdown for GitHub, and the fixed-width text an untrusted notebook shows.
    assert.equal(shown[1], "text/markdown:|a|b|\n|-:|-:|\n|1|0.1235|\n|2|2|\n + text/plain:a       b\n-  ------\n1  0.1235\n2       2");
    assert.equal(fs.readFileSync(path.join(dir, "rows.csv"), "utf8"), "a,b\n1,0.123456789\n2,2\n");
    const live = await notebook("t", "smoke", { display: sink, headless: false, backend: false });
    await live.figure("curve2", fig);
    assert.ok(/^html:\d+ \+ png$/.test(shown[2]), `live figures are HTML with a PNG form: ${shown[2]}`);
    assert.throws(() => live.table("../escape", []), /table name '\.\.\/escape'/);
  } finally {
    if (saved === undefined) delete process.env.STUDY_FIGURES_DIR;
    else process.env.STUDY_FIGURES_DIR = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
