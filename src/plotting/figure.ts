// Figures are plotly.js specs rendered in headless Chromium: PNG (inline in headless runs, and a
// file), SVG (file) and a standalone interactive HTML file with plotly inlined (no CDN).
import * as fs from "node:fs";
import { plotlyBundlePath, plotPage } from "./browser";

/** Values plotly accepts in data arrays; typed arrays (tensor.dataSync()) are converted. */
export type Datum = number | string | boolean | null | Date;
export type DataArray = ArrayLike<Datum> | Datum[][];

/** One plotly trace. The common keys are typed; anything plotly documents may be added. */
export interface Trace {
  type?: string;
  name?: string;
  mode?: string;
  x?: DataArray;
  y?: DataArray;
  z?: DataArray;
  text?: string | string[] | string[][];
  marker?: Record<string, unknown>;
  line?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Axis {
  title?: string | { text: string };
  type?: "linear" | "log" | "category" | "date";
  range?: [number, number];
  [key: string]: unknown;
}

export interface Layout {
  title?: string | { text: string };
  xaxis?: Axis;
  yaxis?: Axis;
  width?: number;
  height?: number;
  [key: string]: unknown;
}

/** A plotly figure: `{ data: [traces], layout }`. */
export interface Figure {
  data: Trace[];
  layout?: Layout;
}

export interface RenderOptions {
  /** CSS pixels; default 720 x 440 (or the layout's width/height). */
  width?: number;
  height?: number;
  /** Pixel density of the PNG file; default 2. The inline PNG is always 1. */
  scale?: number;
}

export interface Rendered {
  /** PNG at `scale` (the file). */
  png: Uint8Array;
  /** PNG at scale 1 (inline in the notebook). */
  inlinePng: Uint8Array;
  svg: string;
  /** Standalone HTML page, plotly inlined. */
  html: string;
}

const DEFAULT_LAYOUT: Layout = {
  font: { family: "Liberation Sans, Arial, DejaVu Sans, sans-serif", size: 13 },
  margin: { l: 72, r: 40, t: 60, b: 60 },
};

/** Plain JSON: typed arrays become arrays, NaN/Infinity become null (as JSON has no such numbers). */
export function plain(v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>, (x) => (Number.isFinite(x) ? x : null));
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x);
    return out;
  }
  return v;
}

function mergeLayout(fig: Figure, opts: RenderOptions): { data: unknown; layout: Record<string, unknown>; width: number; height: number } {
  const width = opts.width ?? fig.layout?.width ?? 720;
  const height = opts.height ?? fig.layout?.height ?? 440;
  const layout = { ...DEFAULT_LAYOUT, ...(plain(fig.layout ?? {}) as Record<string, unknown>), width, height };
  // plotly.js >= 3 takes titles only as { text }; accept the old string form too.
  const asTitle = (o: Record<string, unknown>) => {
    if (typeof o.title === "string") o.title = { text: o.title };
  };
  asTitle(layout);
  for (const [k, v] of Object.entries(layout)) if (/^[xyz]axis\d*$/.test(k) && v && typeof v === "object") asTitle(v as Record<string, unknown>);
  return { data: plain(fig.data), layout, width, height };
}

/** JSON that is safe inside a <script> element. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

let bundle: string | undefined;
function plotlyBundle(): string {
  bundle ??= fs.readFileSync(plotlyBundlePath(), "utf8");
  return bundle;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** A standalone, offline HTML page showing the figure interactively. */
export function standaloneHtml(fig: Figure, title: string, opts: RenderOptions = {}): string {
  const { data, layout } = mergeLayout(fig, opts);
  return [
    "<!DOCTYPE html>",
    `<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`,
    '<body style="margin:0">',
    '<div id="figure"></div>',
    `<script>${plotlyBundle()}</script>`,
    `<script>Plotly.newPlot("figure", ${scriptJson(data)}, ${scriptJson(layout)}, {responsive: true});</script>`,
    "</body></html>",
    "",
  ].join("\n");
}

/**
 * Interactive inline HTML for a live notebook. The first figure of a kernel carries the plotly
 * bundle (with requirejs's `define` hidden while it runs, so that plotly sets window.Plotly in
 * the classic Notebook); later ones wait for it. Until plotly draws, and wherever scripts do not
 * run (untrusted notebooks), the static PNG shows.
 */
/** Where the notebook server serves plotly's bundle from (relative to the repository root). */
const PLOTLY_PATH = "node_modules/plotly.js-dist-min/plotly.min.js";

export function liveHtml(fig: Figure, id: string, inlinePng: Uint8Array, withBundle: boolean, opts: RenderOptions = {}): string {
  const { data, layout, width, height } = mergeLayout(fig, opts);
  const img = `<img alt="${escapeHtml(id)}" width="${width}" height="${height}" src="data:image/png;base64,${Buffer.from(inlinePng).toString("base64")}">`;
  // The first figure of a kernel carries the bundle. Later ones, shown after a page reload (the page
  // has no Plotly, the kernel sends no bundle again), fetch it from the notebook server, which serves
  // the repository under <base>files/ (npm run notebook roots it at the checkout).
  const load = withBundle
    ? `if (!window.Plotly) { var d = window.define; window.define = undefined; try {\n${plotlyBundle()}\n} finally { window.define = d; } }`
    : `if (!window.Plotly && !window.__studyPlotlyLoading) {
  window.__studyPlotlyLoading = true;
  var cfg = document.getElementById("jupyter-config-data");
  var base = document.body.getAttribute("data-base-url") || (cfg ? JSON.parse(cfg.textContent || "{}").baseUrl : "") || "/";
  var s = document.createElement("script"), d = window.define;
  window.define = undefined;
  s.src = base.replace(/\/?$/, "/") + "files/${PLOTLY_PATH}";
  s.onload = s.onerror = function () { window.define = d; };
  document.head.appendChild(s);
}`;
  const draw = `(function () {
  var el = document.getElementById(${JSON.stringify(id)}), tries = 0;
  (function go() {
    if (window.Plotly) { el.innerHTML = ""; window.Plotly.newPlot(el, ${scriptJson(data)}, ${scriptJson(layout)}); }
    else if (tries++ < 100) setTimeout(go, 100);
  })();
})();`;
  return `<div id="${escapeHtml(id)}" style="width:${width}px;height:${height}px">${img}</div>\n<script>${load}\n${draw}</script>`;
}

// Runs in the page. Math.random is reseeded per figure so that plotly's internal ids (clip paths
// in the SVG) are the same on every run.
const RENDER_IN_PAGE = `async ({ data, layout, width, height, scale }) => {
  let s = 0x2545f491;
  Math.random = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gd = document.createElement("div");
  document.body.appendChild(gd);
  try {
    await Plotly.newPlot(gd, data, layout, { staticPlot: true });
    const svg = await Plotly.toImage(gd, { format: "svg", width, height });
    const png = await Plotly.toImage(gd, { format: "png", width, height, scale });
    const inlinePng = scale === 1 ? png : await Plotly.toImage(gd, { format: "png", width, height, scale: 1 });
    return { svg, png, inlinePng };
  } finally {
    Plotly.purge(gd);
    gd.remove();
  }
}`;

function dataUrlBytes(url: string): Uint8Array {
  const comma = url.indexOf(",");
  const head = url.slice(0, comma);
  const body = url.slice(comma + 1);
  return head.endsWith(";base64") ? new Uint8Array(Buffer.from(body, "base64")) : new Uint8Array(Buffer.from(decodeURIComponent(body), "utf8"));
}

/** Renders PNG (file and inline), SVG and standalone HTML. */
export async function renderFigure(fig: Figure, opts: RenderOptions = {}, title = "figure"): Promise<Rendered> {
  if (!fig || !Array.isArray(fig.data)) throw new Error(`figure '${title}': expected { data: [traces], layout? }`);
  const { data, layout, width, height } = mergeLayout(fig, opts);
  const scale = opts.scale ?? 2;
  const page = await plotPage();
  // Passed as source text: a transpiled function could reference helpers that the page lacks.
  const r = (await page.evaluate(`(${RENDER_IN_PAGE})(${scriptJson({ data, layout, width, height, scale })})`)) as {
    svg: string;
    png: string;
    inlinePng: string;
  };
  return {
    png: dataUrlBytes(r.png),
    inlinePng: dataUrlBytes(r.inlinePng),
    svg: Buffer.from(dataUrlBytes(r.svg)).toString("utf8"),
    html: standaloneHtml(fig, title, opts),
  };
}
