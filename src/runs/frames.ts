// Rows or arquero tables as danfo DataFrames (pandas-style analysis in notebooks). danfojs-node is
// loaded on first use: it takes seconds to load (mathjs, xlsx, ...) and most callers never need it.
import type { ColumnTable } from "arquero";
import type { DataFrame } from "danfojs-node";

export type Danfo = typeof import("danfojs-node");
/** The dtypes danfo knows; it keeps the values as JavaScript values whatever the label. */
export type DanfoDtype = "float32" | "int32" | "string" | "boolean";

export function danfo(): Danfo {
  return require("danfojs-node") as Danfo;
}

function isColumnTable(t: unknown): t is ColumnTable {
  return !!t && typeof t === "object" && typeof (t as ColumnTable).columnNames === "function" && typeof (t as ColumnTable).array === "function";
}

type Cell = number | string | boolean | null;

function cell(v: unknown): Cell {
  if (v === undefined || v === null) return null;
  if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * The dtype danfo should give a column. Danfo infers these itself, but labels a boolean column
 * with a missing value float32 and integers beyond int32 (MAC counts) int32, which its tensor
 * conversions would wrap; so the labels are always passed.
 */
function dtypeOf(values: readonly Cell[]): DanfoDtype {
  const present = values.filter((v): v is number | string | boolean => v !== null);
  if (present.length === 0) return "float32";
  if (present.every((v) => typeof v === "boolean")) return "boolean";
  if (!present.every((v) => typeof v === "number")) return "string";
  return present.every((v) => Number.isInteger(v) && Math.abs(v as number) <= INT32_MAX) ? "int32" : "float32";
}

/**
 * A danfo DataFrame of `data`: rows as plain objects or an arquero table. Rows may lack keys that
 * others have: the columns are the union of the rows' keys in first-seen order and missing cells
 * are null (danfo itself takes the first row's keys and shifts the values of later rows into
 * them). Dates become ISO strings, arrays and objects JSON, a column of mixed types strings.
 */
export function toDataFrame(data: ColumnTable | readonly object[], opts: { columns?: readonly string[] } = {}): DataFrame {
  const columns: Record<string, Cell[]> = {};
  if (isColumnTable(data)) {
    for (const name of data.columnNames()) columns[name] = Array.from(data.array(name) as ArrayLike<unknown>, cell);
  } else if (Array.isArray(data)) {
    const rows = data as readonly Record<string, unknown>[];
    const names: string[] = [];
    const seen = new Set<string>();
    for (const r of rows)
      for (const k of Object.keys(r))
        if (!seen.has(k)) {
          seen.add(k);
          names.push(k);
        }
    for (const name of names) columns[name] = rows.map((r) => cell(r[name]));
  } else {
    throw new Error("toDataFrame: expected an arquero table or an array of row objects");
  }
  const names = opts.columns ? [...opts.columns] : Object.keys(columns);
  for (const name of names) if (!(name in columns)) throw new Error(`toDataFrame: no column '${name}' (has ${Object.keys(columns).join(", ") || "none"})`);
  const dfd = danfo();
  const nrows = names.length > 0 ? columns[names[0]].length : 0;
  // Danfo cannot build a frame from empty columns; zero rows is a frame with only the names.
  if (nrows === 0) return new dfd.DataFrame([], { columns: names });
  const dtypes = names.map((n) => dtypeOf(columns[n]));
  const picked = Object.fromEntries(
    names.map((n, i) => [n, dtypes[i] === "string" ? columns[n].map((v) => (v === null ? null : String(v))) : columns[n]]),
  );
  return new dfd.DataFrame(picked, { columns: names, dtypes: dtypes });
}
