// The README's Results section: computed from executed notebooks' outputs (parameters, runs.csv,
// claims.csv), skipped notebooks said as skipped, and the committed README in step with figures/.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { BEGIN, END, resultsMarkdown, withResults } from "../../src/cli/commands/results";
import { REPO_ROOT } from "../../src/ground/root";

const dir = tempDir("results-test");

function executed(folder: string, name: string, opts: { params: Record<string, unknown>; skip?: string; runs?: string; claims?: string; readme?: string }) {
  const d = path.join(folder, name);
  fs.mkdirSync(d, { recursive: true });
  const outputs = [
    ...(opts.skip ? [{ output_type: "display_data", data: {}, metadata: { study: { skip: opts.skip } } }] : []),
    ...(opts.readme ? [{ output_type: "display_data", data: {}, metadata: { study: { table: opts.readme, readme: true } } }] : []),
  ];
  const cells = [
    { cell_type: "markdown", source: [`# ${name} · A title\n`, "text"], metadata: {} },
    { cell_type: "code", source: "x", metadata: {}, outputs },
  ];
  fs.writeFileSync(path.join(d, `${name}.ipynb`), JSON.stringify({ cells, metadata: { study: { parameters: opts.params } } }));
  if (opts.runs) fs.writeFileSync(path.join(d, "runs.csv"), opts.runs);
  if (opts.claims) fs.writeFileSync(path.join(d, "claims.csv"), opts.claims);
  fs.writeFileSync(path.join(d, "curve.png"), "");
}

test("each notebook's part counts its runs, seeds, training time and the claims that hold", () => {
  const figures = path.join(dir, "figures");
  executed(figures, "01-curve", {
    params: { preset: "laptop" },
    runs: "method,seed,train_seconds,error\nAll,0,1800,\nAll,1,1800,\nLoRA,0,3600,\"boom, it failed\"\n",
    claims: 'claim,paper,ours,holds\n"LoRA forgets less, by far",65 vs 25,64.8 vs 60.9,yes\nBlock | wins,75,60,no\nthird,1,2,yes\n',
  });
  executed(figures, "02-table", {
    params: { preset: "laptop", seeds: [0] },
    runs: "method,seed,train_seconds,error\nAll,0,60,\n",
    claims: "claim,paper,ours_best,holds_best,ours_last,holds_last\nc,p,1,yes,2,no\n",
  });
  fs.writeFileSync(path.join(figures, "02-table", "table1.csv"), "method,trainable,seeds,retention,retention_std,paper_retention\nAll,213893,3,60.9333,1.2,25.24\nLinear,325,3,65.94,0,76.11\n");
  executed(figures, "04-sweep", { params: { preset: "laptop", seeds: [0] }, runs: "method,seed,train_seconds,error\nS,0,60,\n", claims: "claim,paper,ours,holds\nc,p,o,yes\nd,p,o,within noise\ne,p,o,within noise\n", readme: "lambda" });
  fs.writeFileSync(path.join(figures, "04-sweep", "checks.csv"), "check,measured,passes\nmerged = base,10 of 10,yes\nlogits,1e-7,no\n");
  fs.writeFileSync(path.join(figures, "04-sweep", "lambda.csv"), "method,lambda,seeds,active_share,active_share_std\nAll,,1,NaN,0\nS,0.2,1,16.6667,0\n");
  fs.writeFileSync(path.join(figures, "04-sweep", "other.csv"), "method,x\nS,1\n");
  executed(figures, "05-clip", { params: { preset: "laptop" }, skip: "no CLIP weights: set STUDY_CLIP_WEIGHTS" });
  executed(figures, "00-environment", { params: { preset: "laptop" }, claims: "claim,paper,ours,holds\nx,y,z,yes\n" });
  const md = resultsMarkdown(figures, dir);
  assert.match(md, /### \[01-curve · A title\]\(\.\.\/.*notebooks\/01-curve\.ipynb\)/);
  assert.match(md, /preset laptop · seeds 0, 1 · 3 runs \(1 failed\) · 2\.0 h of training · 2 of 3 claims hold here/);
  assert.match(md, /\|LoRA forgets less, by far\|65 vs 25\|64\.8 vs 60\.9\|yes\|/, "a comma inside a quoted field stays in its cell");
  assert.match(md, /\|Block \\\| wins\|/, "a pipe in a claim is escaped");
  assert.match(md, /!\[curve\]\(figures\/01-curve\/curve\.png\)/);
  assert.match(md, /preset laptop · seeds \[0\] · 1 runs · 1 min of training · 1 of 1 claims hold here at the best-on-test step, 0 at the last step/);
  assert.match(md, /`table1\.csv` \(mean ± sample std over seeds\):\n\n\|method\|trainable\|retention\|paper_retention\|\n\|:-\|:-\|:-\|:-\|\n\|All\|213893\|60\.93 ± 1\.20\|25\.24\|\n\|Linear\|325\|65\.94 ± 0\.00\|76\.11\|/, "ours beside the paper's, mean ± std");
  assert.match(md, /\|claim\|paper\|ours \(best on test\)\|holds\|ours \(last step\)\|holds\|/);
  assert.match(md, /`lambda\.csv`:\n\n\|method\|lambda\|active_share\|\n\|:-\|:-\|:-\|\n\|All\|\|\|\n\|S\|0\.20\|16\.67\|/, "a table the notebook marked for the README; NaN left blank");
  assert.match(md, /seeds \[0\] · 1 runs · 1 min of training · 1 of 3 claims hold here \(2 within noise\) · 1 of 2 checks of the implementation pass/);
  assert.doesNotMatch(md, /merged = base/, "checks are counted, not shown as a table");
  assert.doesNotMatch(md, /other\.csv/, "an unmarked table without paper columns stays in the notebook");
  assert.match(md, /05-clip[\s\S]*skipped here: no CLIP weights: set STUDY_CLIP_WEIGHTS \(see the notebook\)\./);
  assert.doesNotMatch(md, /00-environment/, "the environment notebook has no results");
  assert.ok(md.indexOf("01-curve") < md.indexOf("02-table") && md.indexOf("02-table") < md.indexOf("05-clip"));

  const readme = `# T\n\n## Results\n\n${BEGIN}\nold text\n${END}\n\n## Next\n`;
  const out = withResults(readme, md);
  assert.ok(out.startsWith(`# T\n\n## Results\n\n${BEGIN}\n`) && out.endsWith(`${END}\n\n## Next\n`));
  assert.ok(!out.includes("old text"));
  assert.equal(withResults(out, md), out, "writing twice changes nothing");
  assert.throws(() => withResults("# no markers\n", md, "X.md"), /X\.md: no results markers/);
});

test("a broken executed notebook is named", () => {
  const figures = path.join(dir, "broken");
  fs.mkdirSync(path.join(figures, "01-x"), { recursive: true });
  fs.writeFileSync(path.join(figures, "01-x", "01-x.ipynb"), "{not json");
  assert.throws(() => resultsMarkdown(figures, dir), /01-x\.ipynb: not a notebook/);
  assert.throws(() => resultsMarkdown(path.join(dir, "nowhere"), dir), /no figures folder/);
});

test("the README's Results section is what the committed figures say", () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
  assert.equal(withResults(readme, resultsMarkdown()), readme, "run `npm run study -- results --write README.md`");
});
