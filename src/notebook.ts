// What notebooks import: `import { notebook } from "./src/notebook";`.
export { notebook, NotebookContext } from "./context";
export type { DisplaySink, FigureFiles, FigureOptions, NotebookOptions, TableFiles } from "./context";
export type { Preset } from "./layout";
export { PRESETS } from "./layout";
export type { Axis, Figure, Layout, Trace } from "../plotting/figure";
export type { TableLike, TableOptions } from "../plotting/table";
export { arquero } from "../plotting/table";
