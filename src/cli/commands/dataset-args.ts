// Dataset shorthands for the command line: `name:split[:classes]`, e.g. `cifar10-jpeg:test:0-4`,
// `mnist:train`, or a JSON DatasetSpec (`{"name":"imagefolder","root":"...","split":"val","size":224}`).
import type { DatasetSpec } from "../../data/datasets";

function parseClasses(s: string): number[] {
  return s.split(",").flatMap((part) => {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i);
    const n = Number(part);
    if (!Number.isInteger(n)) throw new Error(`class list '${s}': '${part}' is not an integer or a range a-b`);
    return [n];
  });
}

export function parseDatasetArg(s: string): DatasetSpec {
  if (s.trim().startsWith("{")) return JSON.parse(s) as DatasetSpec;
  const [name, split, classes] = s.split(":");
  if (!name || !split) throw new Error(`dataset '${s}': expected name:split[:classes] or a JSON spec`);
  const spec = { name, split, ...(classes ? { classes: parseClasses(classes) } : {}) };
  return spec as DatasetSpec;
}

/** Sets obj[a][b][c] = value for "a.b.c", creating objects on the way. */
export function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== "object" || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}
