// The parts of the Jupyter notebook format (nbformat 4) the runner reads and writes, and reading
// with errors that name the file and the problem.
import * as fs from "node:fs";

/** Cell source / stream text: nbformat allows one string or a list of lines. */
export type MultilineString = string | string[];

export interface StreamOutput {
  output_type: "stream";
  name: "stdout" | "stderr";
  text: MultilineString;
}
export interface DisplayOutput {
  output_type: "display_data" | "execute_result";
  data: Record<string, MultilineString | object>;
  metadata: Record<string, unknown>;
  execution_count?: number | null;
}
export interface ErrorOutput {
  output_type: "error";
  ename: string;
  evalue: string;
  traceback: string[];
}
export type Output = StreamOutput | DisplayOutput | ErrorOutput;

export interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  metadata: { tags?: string[]; [key: string]: unknown };
  source: MultilineString;
  outputs?: Output[];
  execution_count?: number | null;
}

export interface Notebook {
  cells: Cell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export function text(s: MultilineString | undefined): string {
  return s === undefined ? "" : Array.isArray(s) ? s.join("") : s;
}

/** Splits text into nbformat's list-of-lines form (each line keeps its "\n"). */
export function lines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Reads and checks a notebook; errors name the file. */
export function readNotebook(file: string): Notebook {
  let raw: string;
  try {
    raw = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file}: cannot read notebook (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let nb: unknown;
  try {
    nb = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${file}: not a notebook, invalid JSON (${(e as Error).message})`);
  }
  const o = nb as Partial<Notebook>;
  if (typeof o !== "object" || o === null || !Array.isArray(o.cells)) throw new Error(`${file}: not a notebook, no "cells" list`);
  if (o.nbformat !== 4) throw new Error(`${file}: nbformat ${String(o.nbformat)} is not supported (need 4)`);
  o.cells.forEach((c, i) => {
    if (!c || !["code", "markdown", "raw"].includes(c.cell_type)) throw new Error(`${file}: cell ${i} has no valid cell_type`);
    if (typeof c.source !== "string" && !Array.isArray(c.source)) throw new Error(`${file}: cell ${i} has no source`);
    c.metadata ??= {};
  });
  o.metadata ??= {};
  return o as Notebook;
}

/** Index of the cell tagged `tag`, or -1. */
export function findTagged(nb: Notebook, tag: string): number {
  return nb.cells.findIndex((c) => c.metadata.tags?.includes(tag) ?? false);
}

/** Jupyter's own serialisation (nbformat.writes): keys sorted, one-space indent, final newline. */
export function serialize(nb: Notebook): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
      return out;
    }
    return v;
  };
  // Python's json.dumps(ensure_ascii=False) leaves non-ASCII as is, like JSON.stringify.
  return JSON.stringify(sortKeys(nb), null, 1) + "\n";
}
