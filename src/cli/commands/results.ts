// `study results`: the README's Results section, computed from what the executed notebooks wrote
// under figures/ (each notebook's parameters, runs.csv and claims.csv), so no number in it is typed in.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "../command";
import { opt, parseArgs } from "../command";
import { REPO_ROOT } from "../../ground/root";
import { writeFileAtomic } from "../../ground/atomic";
import { arquero, Row } from "../../plotting/table";

export const BEGIN = "<!-- results: written by `npm run study -- results --write`; edit the notebooks, not this -->";
export const END = "<!-- results: end -->";

type Cell = { cell_type: string; source: string | string[]; outputs?: { metadata?: { study?: { skip?: string; table?: string; readme?: boolean } } }[] };
interface ExecutedNotebook {
  cells: Cell[];
  metadata: { study?: { parameters?: Record<string, unknown> } };
}

const text = (s: string | string[]) => (Array.isArray(s) ? s.join("") : s);
const cellText = (v: unknown) => (v === null || v === undefined ? "" : String(v)).replace(/\|/g, "\\|").replace(/\n/g, " ");

function readCsv(file: string): Row[] {
  // Every column as text: claims hold numbers already formatted by the notebook.
  return arquero().fromCSV(fs.readFileSync(file, "utf8"), { autoType: false }).objects() as Row[];
}

/** A markdown table with titles of our own (arquero's toMarkdown cannot: two columns here are both "holds"). */
function mdTable(rows: Row[], cols: { key: string; title: string }[]): string {
  return [
    `|${cols.map((c) => c.title).join("|")}|`,
    `|${cols.map(() => ":-").join("|")}|`,
    ...rows.map((r) => `|${cols.map((c) => cellText(r[c.key])).join("|")}|`),
  ].join("\n");
}

const hours = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 60)} min`);

/** One notebook's part of the section, or undefined when it has no executed output in `dir`. */
function notebookSection(dir: string, name: string, relTo: string): string | undefined {
  const nbFile = path.join(dir, `${name}.ipynb`);
  if (!fs.existsSync(nbFile)) return undefined;
  let nb: ExecutedNotebook;
  try {
    nb = JSON.parse(fs.readFileSync(nbFile, "utf8")) as ExecutedNotebook;
  } catch (e) {
    throw new Error(`${nbFile}: not a notebook (${(e as Error).message})`);
  }
  const title = text(nb.cells.find((c) => c.cell_type === "markdown")?.source ?? name).split("\n")[0].replace(/^#+\s*/, "");
  const rel = (f: string) => path.relative(relTo, f).split(path.sep).join("/");
  const lines = [`### [${title}](${rel(path.join(REPO_ROOT, "notebooks", `${name}.ipynb`))})`, ""];

  const params = nb.metadata.study?.parameters ?? {};
  const facts = Object.entries(params).map(([k, v]) => `${k} ${JSON.stringify(v).replace(/^"|"$/g, "")}`);
  const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
  const skip = outputs.map((o) => o.metadata?.study?.skip).find((s) => s);
  const marked = new Set(outputs.filter((o) => o.metadata?.study?.readme).map((o) => `${o.metadata?.study?.table}.csv`));
  // The reason's first line; the executed notebook shows the rest (e.g. each missing input).
  if (skip) return [...lines, `${facts.join(" · ")}: skipped here: ${skip.replace(/:$/, "")} (see the notebook).`, ""].join("\n");

  const runsFile = path.join(dir, "runs.csv");
  if (fs.existsSync(runsFile)) {
    const runs = readCsv(runsFile);
    const seeds = [...new Set(runs.map((r) => String(r.seed)))].sort();
    const failed = runs.filter((r) => String(r.error ?? "") !== "").length;
    const seconds = runs.reduce((s, r) => s + (Number(r.train_seconds) || 0), 0);
    if (!("seeds" in params)) facts.push(`seeds ${seeds.join(", ")}`);
    facts.push(`${runs.length} runs${failed ? ` (${failed} failed)` : ""}`, `${hours(seconds)} of training`);
  }
  const claimsFile = path.join(dir, "claims.csv");
  if (fs.existsSync(claimsFile)) {
    const claims = readCsv(claimsFile);
    const twoReadings = claims.length > 0 && "holds_best" in claims[0];
    const count = (k: string, v: string) => claims.filter((c) => c[k] === v).length;
    const holds = (k: string) => count(k, "yes");
    // Claims whose difference is inside two standard errors hold neither way: said beside the count.
    const noise = (k: string) => (count(k, "within noise") ? ` (${count(k, "within noise")} within noise)` : "");
    facts.push(
      twoReadings
        ? `${holds("holds_best")} of ${claims.length} claims hold here at the best-on-test step${noise("holds_best")}, ${holds("holds_last")} at the last step${noise("holds_last")}`
        : `${holds("holds")} of ${claims.length} claims hold here${noise("holds")}`,
    );
    const checksFile = path.join(dir, "checks.csv");
    if (fs.existsSync(checksFile)) {
      const checks = readCsv(checksFile);
      facts.push(`${checks.filter((c) => c.passes === "yes").length} of ${checks.length} checks of the implementation pass`);
    }
    lines.push(facts.join(" · "), "");
    for (const t of summaryTables(dir, marked)) lines.push(t, "");
    for (const png of fs.readdirSync(dir).filter((f) => f.endsWith(".png")).sort()) lines.push(`![${png.replace(/\.png$/, "")}](${rel(path.join(dir, png))})`, "");
    lines.push(
      mdTable(
        claims,
        twoReadings
          ? [
              { key: "claim", title: "claim" },
              { key: "paper", title: "paper" },
              { key: "ours_best", title: "ours (best on test)" },
              { key: "holds_best", title: "holds" },
              { key: "ours_last", title: "ours (last step)" },
              { key: "holds_last", title: "holds" },
            ]
          : [
              { key: "claim", title: "claim" },
              { key: "paper", title: "paper" },
              { key: "ours", title: "ours" },
              { key: "holds", title: "holds" },
            ],
      ),
      "",
    );
  } else lines.push(facts.join(" · "), "");
  return lines.join("\n");
}

/**
 * The tables the section shows: those that set ours beside the paper's (a CSV with `paper_*`
 * columns, e.g. table1.csv) and those the notebook marked (`nb.table(name, t, { readme: true })`);
 * their columns without the `_std` companions, each shown as `mean ± std` where one exists.
 */
function summaryTables(dir: string, marked: ReadonlySet<string>): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".csv") && f !== "claims.csv" && f !== "checks.csv")
    .sort()
    .flatMap((f) => {
      const rows = readCsv(path.join(dir, f));
      const cols = rows.length ? Object.keys(rows[0]) : [];
      if (!marked.has(f) && !cols.some((c) => c.startsWith("paper_"))) return [];
      const shown = cols.filter((c) => !c.endsWith("_std") && c !== "seeds");
      const isNum = (v: unknown) => v !== "" && v !== undefined && v !== null && Number.isFinite(Number(v));
      // A column of integers (counts) as it is; other numbers with two decimals.
      const counts = new Set(cols.filter((c) => rows.every((r) => !isNum(r[c]) || Number.isInteger(Number(r[c])))));
      // NaN: not defined for that row (e.g. the active share of full fine-tuning): left blank.
      const num = (v: unknown, c: string) => (v === "NaN" ? "" : !isNum(v) || counts.has(c) ? String(v ?? "") : Number(v).toFixed(2));
      const cell = (r: Row, c: string) => (cols.includes(`${c}_std`) && Number(r.seeds) > 1 ? `${num(r[c], c)} ± ${num(r[`${c}_std`], `${c}_std`)}` : num(r[c], c));
      const table = rows.map((r) => Object.fromEntries(shown.map((c) => [c, cell(r, c)])));
      return [`\`${f}\`${rows.some((r) => Number(r.seeds) > 1) ? " (mean ± sample std over seeds)" : ""}:\n\n${mdTable(table, shown.map((c) => ({ key: c, title: c })))}`];
    });
}

/** The Results section for every `NN-name/` folder under `figuresDir` that holds an executed notebook. */
export function resultsMarkdown(figuresDir = path.join(REPO_ROOT, "figures"), relTo = REPO_ROOT): string {
  if (!fs.existsSync(figuresDir)) throw new Error(`${figuresDir}: no figures folder (run \`npm run studies\` first)`);
  const parts = fs
    .readdirSync(figuresDir)
    .filter((f) => /^\d{2}-/.test(f) && !f.startsWith("00-") && fs.statSync(path.join(figuresDir, f)).isDirectory())
    .sort()
    .map((name) => notebookSection(path.join(figuresDir, name), name, relTo))
    .filter((s): s is string => s !== undefined);
  return [
    "Each part is computed from an executed notebook's outputs in `figures/` (its parameters, `runs.csv`,",
    "`claims.csv` and `checks.csv`); `holds` is the notebook's own test of the paper's claim at that preset,",
    "and \"within noise\" means the difference it rests on is inside two standard errors, so this preset",
    "cannot tell. Checks test the implementation (what a paper states as exact, what holds by",
    "construction), not the paper, and are counted apart. Training time is the sum of each run's",
    "`train_seconds`: the attempt that finished it (a resumed run's earlier attempts are not counted), on",
    "the machine that ran it.",
    "",
    ...parts,
  ].join("\n").trimEnd();
}

/** `readme` with the text between the markers replaced by `section`. */
export function withResults(readme: string, section: string, file = "README.md"): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${file}: no results markers (a line "${BEGIN}" and, after it, "${END}")`);
  return `${readme.slice(0, a + BEGIN.length)}\n${section}\n${readme.slice(b)}`;
}

/** `file` as it is and with its Results section computed from `figures`. */
function readmeWithResults(file: string, figures: string): { before: string; after: string } {
  const before = fs.readFileSync(file, "utf8");
  return { before, after: withResults(before, resultsMarkdown(figures, path.dirname(file)), file) };
}

/** Rewrites `file`'s Results section from `figures` (atomically, only when it changed); true when it did. */
export function writeResults(file: string, figures = path.join(REPO_ROOT, "figures")): boolean {
  const { before, after } = readmeWithResults(file, figures);
  if (after !== before) writeFileAtomic(file, after);
  return after !== before;
}

export const command: Command = {
  summary: "the README's Results section, computed from the executed notebooks under figures/",
  usage: `usage: study results [--figures dir] [--write README.md | --check README.md]

  prints the section; --write replaces it between the results markers of the file (atomically);
  --check exits 1 when the file's section differs from what the figures say`,
  async run(argv) {
    const args = parseArgs(argv);
    const figures = path.resolve(opt(args, "figures", path.join(REPO_ROOT, "figures"))!);
    const write = opt(args, "write");
    const check = opt(args, "check");
    const target = write ?? check;
    if (!target) {
      console.log(resultsMarkdown(figures));
      return 0;
    }
    const file = path.resolve(target);
    if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
    if (check) {
      const { before, after } = readmeWithResults(file, figures);
      if (after === before) return 0;
      console.error(`${file}: the Results section differs from the figures; run \`npm run study -- results --write ${target}\``);
      return 1;
    }
    console.log(`${file}: Results section ${writeResults(file, figures) ? "written" : "unchanged"}`);
    return 0;
  },
};
