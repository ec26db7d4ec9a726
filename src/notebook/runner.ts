// `study run`: executes a notebook headless through the real Jupyter (nbclient, environment/
// nbexec.py) with the project kernel, after injecting parameters. The output notebook carries no
// volatile metadata, so the same inputs give a byte-identical file.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "../ground/root";
import { writeFileAtomic } from "../ground/atomic";
import { Notebook, Output, findTagged, readNotebook, serialize, text } from "./ipynb";
import { ENV, Preset, defaultOutput, figuresDirFor, isPreset } from "./layout";
import { INJECTED_TAG, Params, injectParameters } from "./params";

export const KERNEL_NAME = "tslab-study";

export interface NotebookRunOptions {
  /** The notebook to execute. */
  notebook: string;
  /** Injected as the parameter `preset` (the notebook must declare it). */
  preset?: Preset;
  /** Further parameters, injected after the `parameters` cell. */
  params?: Params;
  /** Output notebook; default `defaultOutput()`. Figures go beside it. */
  out?: string;
  /** Allows `out` to be the source notebook itself. */
  inPlace?: boolean;
  /** Per-cell timeout in seconds; default none. */
  timeoutS?: number;
  /** Extra environment for the kernel. */
  env?: NodeJS.ProcessEnv;
}

export interface CellFailure {
  /** Index of the failing cell in the source notebook (0-based); -1 for the injected cell or none. */
  index: number;
  /** First lines of its source. */
  source: string;
  /** The error line (e.g. `Error: boom`), as tslab printed it. */
  error: string;
  /** The cell's error output (stderr / traceback), trimmed to its last lines. */
  detail: string;
}

export interface NotebookRunResult {
  ok: boolean;
  /** Why the notebook ended early without an error (`nb.skip`), when it did. */
  skipped?: string;
  notebook: string;
  out: string;
  figuresDir: string;
  seconds: number;
  failure?: CellFailure;
}

interface ExecResult {
  ok: boolean;
  skipped?: string | null;
  failed_cell: number | null;
  error: string | null;
  /** When the kernel died: "kernel died" and, where known, how its process ended. */
  kernel_died?: string;
}

let pythonCache: string | undefined;

/** A Python that has nbclient: STUDY_PYTHON, then Debian's /usr/bin/python3, then python3 on PATH. */
export function findPython(): string {
  if (pythonCache) return pythonCache;
  const tried: string[] = [];
  for (const py of [process.env.STUDY_PYTHON, "/usr/bin/python3", "python3"]) {
    if (!py) continue;
    tried.push(py);
    const r = spawnSync(py, ["-c", "import nbclient, nbformat, jupyter_client"], { stdio: "ignore" });
    if (r.status === 0) return (pythonCache = py);
  }
  throw new Error(`no Python with nbclient (tried ${tried.join(", ")}); run 'bash environment/setup.sh' or set STUDY_PYTHON`);
}

/** Environment for Jupyter and the kernel: the project kernelspec first on JUPYTER_PATH. */
export function jupyterEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const specs = path.join(REPO_ROOT, "environment", "jupyter");
  const prev = process.env.JUPYTER_PATH;
  return {
    ...process.env,
    JUPYTER_PATH: prev ? `${specs}${path.delimiter}${prev}` : specs,
    JUPYTER_RUNTIME_DIR: path.join(REPO_ROOT, ".jupyter-runtime"),
    ...extra,
  };
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

function outputText(o: Output): string {
  if (o.output_type === "stream") return text(o.text);
  if (o.output_type === "error") return [`${o.ename}: ${o.evalue}`, ...o.traceback].join("\n");
  return "";
}

/**
 * The error of a failed cell from its outputs. tslab sends runtime errors as stderr text without
 * ename/evalue, and type errors as `line:col - message` lines.
 */
export function describeFailure(executed: Notebook, index: number, fallback: string): { error: string; detail: string } {
  const cell = executed.cells[index];
  const errText = (cell?.outputs ?? [])
    .filter((o) => o.output_type === "error" || (o.output_type === "stream" && o.name === "stderr"))
    .map(outputText)
    .join("")
    .replace(ANSI, "")
    .trimEnd();
  const all = errText || fallback.replace(ANSI, "").trim();
  return { error: errorLine(all), detail: all.split("\n").slice(-25).join("\n") };
}

/** The line of an error text that says what went wrong: an `...Error:` line, a type error, or the first. */
function errorLine(text: string): string {
  const ls = text.split("\n");
  const line =
    ls.find((l) => /^(?:[A-Za-z_$][\w$.]*)?(?:Error|Exception)(?::|$| \[)/.test(l)) ??
    ls.find((l) => /^\d+:\d+ - /.test(l)) ??
    ls.find((l) => l.trim().length > 0) ??
    "(no error output)";
  return line.trim();
}

/** What a dead kernel said about why: a fatal error, an error or abort line, else its last line. */
function deathLine(text: string): string {
  const ls = text.split("\n").map((l) => l.trim()).filter((l) => l);
  return ls.find((l) => /FATAL ERROR|^(?:[A-Za-z_$][\w$.]*)?(?:Error|Exception)\b|abort/i.test(l)) ?? ls[ls.length - 1];
}

function sourceHead(src: string, n = 4): string {
  const ls = src.split("\n");
  return ls.slice(0, n).join("\n") + (ls.length > n ? "\n..." : "");
}

/**
 * The preset a run is at: `preset`, or the `preset` parameter (`--set preset=smoke` is the same
 * run as `--preset smoke`, and must not write over the reference run in figures/ either).
 */
export function runPreset(opts: Pick<NotebookRunOptions, "preset" | "params">): Preset | undefined {
  const p: unknown = opts.preset ?? opts.params?.preset;
  if (p === undefined) return undefined;
  if (isPreset(p)) return p;
  throw new Error(`unknown preset '${String(p)}' (smoke, laptop, paper)`);
}

/** Executes one notebook; never throws for a failing cell (see `failure`), throws for bad input. */
export async function runNotebook(opts: NotebookRunOptions): Promise<NotebookRunResult> {
  const t0 = performance.now();
  const src = path.resolve(opts.notebook);
  const nb = readNotebook(src);
  const out = path.resolve(opts.out ?? defaultOutput(src, runPreset(opts)));
  if (!out.endsWith(".ipynb")) throw new Error(`--out ${out}: the output must be a .ipynb file`);
  if (out === src && !opts.inPlace) throw new Error(`${src}: refusing to overwrite the source notebook (pass --in-place, or --out elsewhere)`);
  const params: Params = { ...(opts.preset ? { preset: opts.preset } : {}), ...(opts.params ?? {}) };
  const injected = injectParameters(nb, params, path.relative(process.cwd(), src) || src);
  // Like papermill's metadata.papermill.parameters: what this run was given, for tools reading it.
  injected.metadata.study = { parameters: params };
  const figuresDir = figuresDirFor(out);
  fs.mkdirSync(figuresDir, { recursive: true });

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "study-run-"));
  try {
    const input = path.join(tmp, path.basename(src));
    const resultFile = path.join(tmp, "result.json");
    writeFileAtomic(input, serialize(injected));
    const args = [path.join(REPO_ROOT, "environment", "nbexec.py"), input, out, resultFile, "--kernel", KERNEL_NAME, "--cwd", REPO_ROOT];
    if (opts.timeoutS !== undefined) args.push("--timeout", String(Math.round(opts.timeoutS)));
    const env = jupyterEnv({ [ENV.headless]: "1", [ENV.figuresDir]: figuresDir, ...opts.env });
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(findPython(), args, { cwd: REPO_ROOT, env, stdio: ["ignore", "inherit", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => {
        err = (err + d.toString("utf8")).slice(-20000);
      });
      child.on("error", reject);
      child.on("close", (c) => resolve({ code: c, stderr: err }));
    });
    let res: ExecResult;
    try {
      res = JSON.parse(fs.readFileSync(resultFile, "utf8")) as ExecResult;
    } catch {
      throw new Error(`${src}: the Jupyter executor exited with ${code} before writing a result:\n${stderr.trim().split("\n").slice(-15).join("\n")}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    if (res.ok) return { ok: true, notebook: src, out, figuresDir, seconds, ...(res.skipped ? { skipped: res.skipped } : {}) };

    const executed = readNotebook(out);
    const idx = res.failed_cell ?? -1;
    // A dead kernel leaves no cell output: its last words went to the executor's stderr.
    const died = res.kernel_died;
    const cellErr = died ? describeFailure(executed, idx, "").detail : "";
    const last = `${cellErr}\n${stderr.replace(ANSI, "")}`.trim().split("\n").slice(-25).join("\n");
    const { error, detail } = died
      ? { error: `${died}${last ? `; its last output: ${deathLine(last)}` : " without output"}`, detail: last }
      : describeFailure(executed, idx, res.error ?? stderr);
    const injectedAt = findTagged(injected, INJECTED_TAG);
    const sourceIndex = idx < 0 || idx === injectedAt ? -1 : injectedAt >= 0 && idx > injectedAt ? idx - 1 : idx;
    const source = idx >= 0 ? sourceHead(text(executed.cells[idx].source)) : "";
    return { ok: false, notebook: src, out, figuresDir, seconds, failure: { index: sourceIndex, source, error, detail } };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A failure as the CLI prints it: file, cell index, source head, error. */
export function formatFailure(r: NotebookRunResult): string {
  const f = r.failure;
  if (!f) return "";
  const rel = path.relative(process.cwd(), r.notebook) || r.notebook;
  const where = f.index >= 0 ? `cell ${f.index}` : f.source ? "the injected parameters cell" : "kernel start";
  const indent = (s: string, p: string) => s.split("\n").map((l) => p + l).join("\n");
  return [
    `${rel}: ${where} failed: ${f.error}`,
    ...(f.source ? ["  source:", indent(f.source, "  | ")] : []),
    "  output:",
    indent(f.detail, "    "),
    `  partial output notebook: ${r.out}`,
  ].join("\n");
}
