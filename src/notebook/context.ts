// The notebook side: `const nb = await notebook("00-environment", preset)` in the cell after
// the parameters. It knows the preset, where this run's figures and tables go, and shows them:
// inline PNG / markdown when executed headless by `study run`, interactive plotly / HTML live.
import * as path from "node:path";
import { initBackend, BackendReport } from "../runtime/backend";
import { RunEnvironment, provenanceLine, runEnvironment } from "../runtime/record";
import { REPO_ROOT } from "../ground/root";
import { writeFileAtomic } from "../ground/atomic";
import { plotPage } from "../plotting/browser";
import { Figure, RenderOptions, liveHtml, renderFigure } from "../plotting/figure";
import { TableLike, TableOptions, tableText, toTable } from "../plotting/table";
import { ENV, Preset, PRESETS, isPreset, kernelFiguresDir } from "./layout";

/**
 * Where rich output goes: one output with several forms of the same thing (MIME type -> content),
 * of which the front end shows the richest it trusts. tslab's own display sends one type per
 * output, so in a kernel this goes through tslab's display channel (see `tslabSink`).
 */
export interface DisplaySink {
  bundle(data: Record<string, string | Uint8Array>, metadata?: Record<string, unknown>): void;
}

/** tslab's display channel with several MIME types in one output (its public API sends one). */
export function tslabSink(): DisplaySink {
  return {
    bundle(data, metadata = {}) {
      const jupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData?: (d: unknown, update: boolean) => void };
      const write = jupyter.lastWriteDisplayData;
      if (!write) throw new Error("Not ready: no executing notebook cell to display in");
      const enc = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, typeof v === "string" ? v : Buffer.from(v).toString("base64")]));
      write({ data: enc, metadata, transient: {} }, false);
    },
  };
}

export interface NotebookOptions {
  /** Select a TensorFlow.js backend (initBackend) and keep its report; default true. */
  backend?: boolean;
  /** Override where output is shown (tests); default tslab's display. */
  display?: DisplaySink;
  /** Override headless detection; default: set by `study run` (STUDY_HEADLESS=1). */
  headless?: boolean;
  /** Launch the figure browser in the background right away; default true. */
  prewarm?: boolean;
}

export interface FigureOptions extends RenderOptions {
  /** Show it inline; default true. */
  show?: boolean;
}

export interface FigureFiles {
  png: string;
  svg: string;
  html: string;
}

export interface TableFiles {
  csv: string;
  md: string;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkName(kind: string, name: string): void {
  if (!SAFE_NAME.test(name)) throw new Error(`${kind} name '${name}': use letters, digits, '.', '_' and '-' (it becomes a file name)`);
}

export class NotebookContext {
  /** Figures shown so far in this kernel (the first live one carries the plotly bundle). */
  private static shown = 0;
  private readonly sink: () => DisplaySink;

  constructor(
    /** The notebook's name, e.g. "00-environment". */
    readonly name: string,
    readonly preset: Preset,
    /** Directory for this run's figures and tables (created on first write). */
    readonly dir: string,
    /** True when executed by `study run`. */
    readonly headless: boolean,
    /** The backend report, when `notebook()` selected one. */
    readonly backend: BackendReport | undefined,
    display?: DisplaySink,
    /** Versions, git commit and machine, read when the notebook started (before it wrote anything). */
    readonly environment: RunEnvironment = runEnvironment(),
  ) {
    this.sink = display ? () => display : tslabSink;
  }

  /** The repository root (the kernel's working directory). */
  get root(): string {
    return REPO_ROOT;
  }

  /** A path relative to the repository root, as outputs print them (no machine-specific prefix). */
  relative(p: string): string {
    const r = path.relative(REPO_ROOT, path.resolve(REPO_ROOT, p));
    return r === "" ? "." : r.startsWith("..") ? p : r;
  }

  /** The value for this preset: `nb.pick({ smoke: 64, laptop: 5_000, paper: 50_000 })`. */
  pick<T>(choices: Record<Preset, T>): T {
    if (!(this.preset in choices)) throw new Error(`pick: no value for preset '${this.preset}'`);
    return choices[this.preset];
  }

  /** A path inside this run's output directory. */
  path(file: string): string {
    return path.join(this.dir, file);
  }

  /**
   * Writes `<name>.png` (scale 2), `<name>.svg` and `<name>.html` (standalone, plotly inlined) to
   * `dir`, and shows the figure: a PNG headless, interactive plotly live. Resolves to nothing, so
   * that a cell ending in `await nb.figure(...)` prints no paths; `nb.figureFiles(name)` names them.
   */
  async figure(name: string, fig: Figure, opts: FigureOptions = {}): Promise<void> {
    checkName("figure", name);
    const r = await renderFigure(fig, opts, `${this.name}: ${name}`);
    const files = this.figureFiles(name);
    writeFileAtomic(files.png, r.png);
    writeFileAtomic(files.svg, r.svg);
    writeFileAtomic(files.html, r.html);
    if (opts.show ?? true) {
      // Headless: the PNG alone (executed notebooks are untrusted: HTML and SVG are hidden there).
      if (this.headless) this.sink().bundle({ "image/png": r.inlinePng });
      else this.sink().bundle({ "text/html": liveHtml(fig, `fig-${this.name}-${name}-${NotebookContext.shown}`, r.inlinePng, NotebookContext.shown === 0, opts), "image/png": r.inlinePng });
      NotebookContext.shown++;
    }
  }

  /** The files `figure(name, ...)` writes. */
  figureFiles(name: string): FigureFiles {
    return { png: this.path(`${name}.png`), svg: this.path(`${name}.svg`), html: this.path(`${name}.html`) };
  }

  /** The files `table(name, ...)` writes. */
  tableFiles(name: string): TableFiles {
    return { csv: this.path(`${name}.csv`), md: this.path(`${name}.md`) };
  }

  /**
   * Writes `<name>.csv` and `<name>.md` to `dir` and shows the table: markdown headless (GitHub),
   * HTML live, each with a fixed-width text form (what an untrusted notebook shows). `readme`
   * marks it for the README's Results section (`study results`), beside any table with `paper_*`
   * columns.
   */
  table(name: string, t: TableLike, opts: TableOptions & { show?: boolean; readme?: boolean } = {}): void {
    checkName("table", name);
    const txt = tableText(toTable(t, name), opts);
    const files = this.tableFiles(name);
    writeFileAtomic(files.csv, txt.csv);
    writeFileAtomic(files.md, txt.markdown);
    const meta = opts.readme ? { study: { table: name, readme: true } } : undefined;
    if (opts.show ?? true) this.sink().bundle(this.headless ? { "text/markdown": txt.markdown, "text/plain": txt.plain } : { "text/html": txt.html, "text/plain": txt.plain }, meta);
  }

  /**
   * Ends the notebook here without an error, saying why (e.g. its input files are not on this
   * machine): headless (`study run`), the later cells are not executed and the run reports
   * "skipped"; live, an error stops "Run All" after the message.
   */
  skip(reason: string): void {
    this.sink().bundle({ "text/markdown": `**Skipped.**\n\n\`\`\`\n${reason}\n\`\`\``, "text/plain": `Skipped. ${reason}` }, { study: { skip: reason.split("\n")[0] } });
    if (!this.headless) throw new Error(`skipped: ${reason.split("\n")[0]}`);
  }

  /** Shows markdown inline (e.g. a paragraph computed from results), with its text as the plain form. */
  markdown(s: string): void {
    this.sink().bundle({ "text/markdown": s, "text/plain": s });
  }
}

/**
 * Runs `f` (a backend's start) and then takes away the process-level error listeners it added,
 * where the kernel had its own. tslab logs an exception that no cell catches and goes on (its file
 * watcher throws one when files under the repository change during a long cell); the wasm
 * backend's emscripten module adds listeners that rethrow it, which ended the kernel (exit code 7)
 * and the notebook with it, at a random moment of a long sweep.
 */
async function keepingKernelHandlers<T>(f: () => Promise<T>): Promise<T> {
  const exceptions = new Set(process.listeners("uncaughtException"));
  const rejections = new Set(process.listeners("unhandledRejection"));
  try {
    return await f();
  } finally {
    // Not in a kernel (no listeners of its own): nothing to keep.
    if (exceptions.size) for (const l of process.listeners("uncaughtException")) if (!exceptions.has(l)) process.removeListener("uncaughtException", l);
    if (rejections.size) for (const l of process.listeners("unhandledRejection")) if (!rejections.has(l)) process.removeListener("unhandledRejection", l);
  }
}

/**
 * The context of one notebook: `const nb = await notebook("00-environment", preset);`.
 * `name` names its figures directory (`figures/<name>/`, or what `study run` chose); `preset` is
 * the notebook's `preset` parameter (default "laptop"). It is positional on purpose: tslab fails on
 * shorthand properties (`{ preset }`) that name a variable declared in an earlier cell.
 */
export async function notebook(name: string, preset: string = "laptop", opts: NotebookOptions = {}): Promise<NotebookContext> {
  checkName("notebook", name);
  if (!isPreset(preset)) throw new Error(`notebook '${name}': preset '${preset}' is not one of ${PRESETS.join(", ")}`);
  const headless = opts.headless ?? process.env[ENV.headless] === "1";
  // Start the browser now, in the background: its launch (seconds) overlaps with the cells that
  // run before the first figure. A failure here is retried, and reported, by that figure.
  if (opts.prewarm ?? true) plotPage().catch(() => undefined);
  const backend = opts.backend === false ? undefined : await keepingKernelHandlers(() => initBackend());
  const nb = new NotebookContext(name, preset, kernelFiguresDir(name, preset), headless, backend, opts.display, runEnvironment());
  console.log(provenanceLine(nb.environment));
  return nb;
}
