// A sweep in its own process (for the kill -9 test): a smoke-preset Table-1 study whose LoRA run
// is long enough to be killed in the middle. Writes the rows as JSON to argv[2].
import * as fs from "node:fs";
import * as paperA from "../../src/studies/paper-a";
import { sweep, Variant } from "../../src/studies/sweep";
import { rowsOf } from "../../src/studies/rows";

export function resumeStudy(): { base: ReturnType<typeof paperA.recipe>; variants: Variant[] } {
  const base = paperA.recipe("smoke");
  const lora = paperA.variant("smoke", "LoRA r=8", 0);
  return {
    base,
    variants: [
      paperA.sourceVariant("smoke"),
      paperA.variant("smoke", "All", 0),
      { ...lora, train: { ...lora.train, steps: 30 }, retention: { ...lora.retention, steps: [0, 10, 30] } },
      paperA.variant("smoke", "Linear", 0),
    ],
  };
}

if (require.main === module) {
  (async () => {
    const { base, variants } = resumeStudy();
    const rows = rowsOf(await sweep(base, variants, { label: "resume test" }));
    fs.writeFileSync(process.argv[2], JSON.stringify(rows));
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
