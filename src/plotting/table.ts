// Result tables are arquero tables: saved as CSV + markdown, shown inline as markdown (headless;
// GitHub and untrusted notebooks render it) or HTML (live).
import type { ColumnTable } from "arquero";

export type Row = Record<string, unknown>;
/** An arquero table, or rows as plain objects. */
export type TableLike = ColumnTable | Row[];

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
  if (Array.isArray(t)) return arquero().from(t);
  throw new Error(`table '${name}': expected an arquero table or an array of row objects`);
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
}

export function tableText(t: ColumnTable, opts: TableOptions = {}): TableText {
  const limit = opts.limit ?? 50;
  const format = Object.fromEntries(t.columnNames().map((c) => [c, fmt(opts.digits ?? 4)]));
  const more = t.numRows() > limit ? `\n(${t.numRows() - limit} more rows in the CSV)\n` : "";
  return {
    csv: t.toCSV(),
    markdown: t.toMarkdown({ limit, format }) + more,
    html: t.toHTML({ limit, format }) + (more ? `<p>${more.trim()}</p>` : ""),
  };
}
