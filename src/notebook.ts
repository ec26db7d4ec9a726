// What notebooks import: `import { notebook } from "./src/notebook";`. This is a file beside the
// folder, not src/notebook/index.ts: tslab resolves "./src/notebook" to "src/notebook.js" only
// (it does not look for index files), so directory imports fail in a kernel.
export { notebook, NotebookContext } from "./notebook/context";
export type { DisplaySink, FigureFiles, FigureOptions, NotebookOptions, TableFiles } from "./notebook/context";
export type { Preset } from "./notebook/layout";
export { PRESETS } from "./notebook/layout";
export type { Axis, Figure, Layout, Trace } from "./plotting/figure";
export type { TableLike, TableOptions } from "./plotting/table";
export { arquero } from "./plotting/table";
