// Papermill-style parameters for TypeScript notebooks. The cell tagged `parameters` declares the
// defaults (`const preset = "laptop";`); a run inserts a cell tagged `injected-parameters` right
// after it that re-declares the overridden names (tslab accepts a `const` declared again in a later
// cell). Opened by hand, the notebook runs on its defaults alone.
import * as ts from "typescript";
import { Cell, Notebook, findTagged, lines, text } from "./ipynb";

export type ParamValue = string | number | boolean | null | ParamValue[] | { [key: string]: ParamValue };
export type Params = Record<string, ParamValue>;

export const PARAMETERS_TAG = "parameters";
export const INJECTED_TAG = "injected-parameters";

export interface Declared {
  name: string;
  keyword: "const" | "let" | "var";
}

/** Top-level `const|let|var NAME` declarations of a cell, in order (destructuring is ignored). */
export function declaredParams(source: string): Declared[] {
  const sf = ts.createSourceFile("parameters.ts", source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out: Declared[] = [];
  for (const st of sf.statements) {
    if (!ts.isVariableStatement(st)) continue;
    const flags = st.declarationList.flags;
    const keyword = flags & ts.NodeFlags.Const ? "const" : flags & ts.NodeFlags.Let ? "let" : "var";
    for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) out.push({ name: d.name.text, keyword });
  }
  return out;
}

/**
 * `key=value` from the command line: the value is read as JSON when it parses (numbers, booleans,
 * null, quoted strings, arrays, objects), otherwise taken as a plain string.
 */
export function parseSetting(spec: string): [string, ParamValue] {
  const eq = spec.indexOf("=");
  if (eq <= 0) throw new Error(`--set expects key=value, got '${spec}'`);
  const key = spec.slice(0, eq).trim();
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) throw new Error(`--set ${spec}: '${key}' is not an identifier`);
  const raw = spec.slice(eq + 1);
  try {
    return [key, JSON.parse(raw) as ParamValue];
  } catch {
    return [key, raw];
  }
}

/** The source of the injected cell: one declaration per parameter, with the defaults' keyword. */
export function injectedSource(params: Params, declared: readonly Declared[]): string {
  const kw = new Map(declared.map((d) => [d.name, d.keyword]));
  const body = Object.entries(params).map(([k, v]) => `${kw.get(k) ?? "const"} ${k} = ${JSON.stringify(v)};`);
  return ["// Parameters injected by `study run`; the defaults are in the cell above.", ...body].join("\n");
}

/**
 * A copy of `nb` with the injected-parameters cell after the `parameters` cell (replacing an
 * injected cell left by an earlier run). Every key must be declared in the parameters cell: a typo
 * is an error listing the declared names, not a silently ignored setting. `file` names errors.
 */
export function injectParameters(nb: Notebook, params: Params, file: string): Notebook {
  const copy: Notebook = JSON.parse(JSON.stringify(nb)) as Notebook;
  const old = findTagged(copy, INJECTED_TAG);
  if (old >= 0) copy.cells.splice(old, 1);
  const keys = Object.keys(params);
  const at = findTagged(copy, PARAMETERS_TAG);
  if (at < 0) {
    if (keys.length === 0) return copy;
    throw new Error(`${file}: no cell is tagged '${PARAMETERS_TAG}', so ${keys.join(", ")} cannot be set`);
  }
  const declared = declaredParams(text(copy.cells[at].source));
  const known = new Set(declared.map((d) => d.name));
  const unknown = keys.filter((k) => !known.has(k));
  if (unknown.length) {
    throw new Error(
      `${file}: unknown parameter${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; the parameters cell declares ${[...known].join(", ") || "nothing"}`,
    );
  }
  if (keys.length === 0) return copy;
  const cell: Cell = {
    cell_type: "code",
    execution_count: null,
    id: INJECTED_TAG,
    metadata: { tags: [INJECTED_TAG] },
    outputs: [],
    source: lines(injectedSource(params, declared)),
  };
  copy.cells.splice(at + 1, 0, cell);
  return copy;
}
