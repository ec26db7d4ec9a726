// Result tables are arquero tables: saved as CSV + markdown, shown inline as markdown (headless;
// GitHub and untrusted notebooks render it) or HTML (live).
import type { ColumnTable } from "arquero";

export type Row = Record<string, unknown>;
/** An arquero table, or rows as plain objects (rows may lack keys others have: those cells are empty). */
export type TableLike = ColumnTable | readonly object[];

export interface TableOptions {
  /** Rows shown inline (the files always hold every row); default 50. */
  limit?: number;
  /** Significant digits of non-integer numbers in markdown/HTML (CSV keeps full precision); default 4. */
  digits?: number;
}

export function isColumnTable(t: unknown): t is ColumnTable {
  return !!t && typeof t === "object" && typeof (t as ColumnTable).toCSV === "function" && typeof (t as ColumnTable).numRows === "function";
}

/** Arquero is ESM-only: loaded on first use through require(esm) (Node >= 20.19). */
export function arquero(): typeof import("arquero") {
  return require("arquero") as typeof import("arquero");
}

export function toTable(t: TableLike, name = "table"): ColumnTable {
  if (isColumnTable(t)) return t;
  if (!Array.isArray(t)) throw new Error(`table '${name}': expected an arquero table or an array of row objects`);
  // Columns are the union of the rows' keys in first-seen order (arquero reads the first row's only).
  const rows = t as readonly Row[];
  const names: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (!seen.has(k)) { seen.add(k); names.push(k); }
  return arquero().from(rows.map((r) => Object.fromEntries(names.map((k) => [k, r[k] ?? null]))), names);
}

function fmt(digits: number): (v: unknown) => string {
  return (v) => {
    if (typeof v === "number") return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(digits)));
    if (v === null || v === undefined) return "";
    if (v instanceof Date) return v.toISOString();
    return String(v);
  };
}

export interface TableText {
  csv: string;
  markdown: string;
  html: string;
  /** Fixed-width text: what untrusted notebooks and terminals show. */
  plain: string;
}

/** A fixed-width text table: numbers right-aligned, a rule under the header. */
export function plainTable(t: ColumnTable, limit: number, format: (v: unknown) => string): string {
  const names = t.columnNames();
  const rows = (t.objects({ limit }) as Record<string, unknown>[]).map((r) => names.map((c) => format(r[c])));
  const numeric = names.map((c) => (t.objects({ limit }) as Record<string, unknown>[]).every((r) => typeof r[c] === "number" || r[c] === null || r[c] === undefined));
  const width = names.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((v, i) => (numeric[i] ? v.padStart(width[i]) : v.padEnd(width[i]))).join("  ").trimEnd();
  return [line(names), width.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function tableText(t: ColumnTable, opts: TableOptions = {}): TableText {
  const limit = opts.limit ?? 50;
  const format = Object.fromEntries(t.columnNames().map((c) => [c, fmt(opts.digits ?? 4)]));
  const more = t.numRows() > limit ? `\n(${t.numRows() - limit} more rows in the CSV)\n` : "";
  const f = fmt(opts.digits ?? 4);
  return {
    csv: t.toCSV(),
    markdown: t.toMarkdown({ limit, format }) + more,
    html: t.toHTML({ limit, format }) + (more ? `<p>${more.trim()}</p>` : ""),
    plain: plainTable(t, limit, f) + more,
  };
}
