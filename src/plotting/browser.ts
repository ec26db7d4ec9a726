// One headless Chromium per process (launching costs seconds; a figure costs tens of ms), with one
// page that has plotly.js loaded. Playwright kills the browser when the process exits.
import * as fs from "node:fs";
import * as path from "node:path";

// The few playwright-core members used here, declared locally: importing its types would make tslab
// type-check playwright's ~20k lines of declarations in every kernel that draws a figure.
interface Page {
  setContent(html: string): Promise<void>;
  addScriptTag(opts: { path: string }): Promise<unknown>;
  evaluate(expression: string): Promise<unknown>;
}
interface Browser {
  newPage(opts: { viewport: { width: number; height: number }; deviceScaleFactor: number }): Promise<Page>;
  on(event: "disconnected", fn: () => void): void;
  close(): Promise<void>;
}
interface Chromium {
  launch(opts: { executablePath: string; args: string[]; headless: boolean }): Promise<Browser>;
}

/** Offline, quiet, no sandbox (root in containers), no GPU: the same pixels on every run. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--font-render-hinting=none",
];

/** STUDY_CHROMIUM, then Debian's /usr/bin/chromium, then chromium/chrome on PATH. */
export function chromiumPath(): string {
  const fromEnv = process.env.STUDY_CHROMIUM;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`STUDY_CHROMIUM=${fromEnv} does not exist`);
    return fromEnv;
  }
  const dirs = ["/usr/bin", ...(process.env.PATH ?? "").split(path.delimiter).filter((d) => d)];
  for (const name of ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]) {
    for (const d of dirs) {
      const p = path.join(d, name);
      if (fs.existsSync(p)) return p;
    }
  }
  throw new Error("no Chromium found for rendering figures: run 'bash environment/setup.sh' (installs Debian's chromium) or set STUDY_CHROMIUM");
}

export function plotlyBundlePath(): string {
  return require.resolve("plotly.js-dist-min");
}

let browser: Promise<Browser> | undefined;
let page: Promise<Page> | undefined;

async function launch(): Promise<Browser> {
  // playwright-core is loaded on first use: notebooks that draw nothing never pay for it.
  const { chromium } = require("playwright-core") as { chromium: Chromium };
  // Playwright gives every launch a fresh temporary --user-data-dir and removes it afterwards.
  const b = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS, headless: true });
  b.on("disconnected", () => {
    browser = undefined;
    page = undefined;
  });
  return b;
}

/** The shared page with plotly.js loaded (launching the browser on first use). */
export function plotPage(): Promise<Page> {
  if (!page) {
    const p = (async () => {
      browser ??= launch();
      const b = await browser;
      const pg = await b.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
      await pg.setContent("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body style='margin:0'></body></html>");
      await pg.addScriptTag({ path: plotlyBundlePath() });
      return pg;
    })();
    page = p;
    // A failed launch must not stick: the next call tries again.
    p.catch(() => {
      if (page === p) page = undefined;
      browser = undefined;
    });
  }
  return page;
}

/** Closes the shared browser (the next figure launches a new one). */
export async function closeBrowser(): Promise<void> {
  const b = browser;
  browser = undefined;
  page = undefined;
  if (b) await (await b).close();
}

/** Whether a browser is running in this process (for tests). */
export function browserRunning(): boolean {
  return browser !== undefined;
}
