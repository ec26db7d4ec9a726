// Run sizes of the studies: one word picks every size of a notebook (data, steps, seeds).
//   smoke   seconds: every code path on tiny subsets (tests, CI)
//   laptop  minutes to an hour on a CPU: the small-scale analog, the committed reference runs
//   paper   the papers' own settings (ViT-B/16, full datasets, 10k iterations): GPU hours
// (A ViT size is a `PresetName` of src/model/config.ts: another notion, another name.)
export type Preset = "smoke" | "laptop" | "paper";
export const PRESETS: readonly Preset[] = ["smoke", "laptop", "paper"];

export function isPreset(s: unknown): s is Preset {
  return typeof s === "string" && (PRESETS as readonly string[]).includes(s);
}

/** The value for a preset: `pick(preset, { smoke: 6, laptop: 500, paper: 10_000 })`. */
export function pick<T>(preset: Preset, choices: Record<Preset, T>): T {
  if (!(preset in choices)) throw new Error(`no value for preset '${preset}'`);
  return choices[preset];
}
