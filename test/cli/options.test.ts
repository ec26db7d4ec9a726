// Every `study` command takes only the options its usage names: a typo is a usage error that
// suggests the nearest option, never a silent fallback to a default. The usage is the one list,
// so every option a command reads must be in it (checked on the commands' source).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError, checkOptions, usageOptions } from "../../src/cli/command";
import type { Command } from "../../src/cli/command";
import { REPO_ROOT } from "../../src/ground/root";

const USAGE = "usage: x [--rank R] [--set key=value ...] [--in-place]";

const cases: { argv: string[]; error?: RegExp }[] = [
  { argv: ["a.ipynb", "--rank", "4", "--set", "x=--y", "--in-place"] },
  { argv: ["--rank=4", "--help"] },
  { argv: ["--rnk", "4"], error: /^x: unknown option --rnk \(did you mean --rank\?\); its options: --rank, --set, --in-place$/ },
  { argv: ["--dry-run"], error: /unknown option --dry-run; its options/ },
  { argv: ["--rank", "4", "--", "--anything"], },
];

for (const c of cases) {
  test(`options: ${c.argv.join(" ")}${c.error ? " is refused" : " is taken"}`, () => {
    if (!c.error) return checkOptions("x", USAGE, c.argv);
    assert.throws(() => checkOptions("x", USAGE, c.argv), (e: unknown) => e instanceof UsageError && c.error!.test(e.message));
  });
}

const commandsDir = path.join(REPO_ROOT, "src", "cli", "commands");
const commands = fs.readdirSync(commandsDir).filter((f) => f.endsWith(".ts") && f !== "dataset-args.ts");

test("every option a command reads is named in its usage", async () => {
  for (const f of commands) {
    const { command } = (await import(path.join(commandsDir, f))) as { command: Command };
    const source = fs.readFileSync(path.join(commandsDir, f), "utf8");
    const read = [...source.matchAll(/(?:opt|numOpt)\(args, "([a-z0-9-]+)"|options\.(?:get|has)\("([a-z0-9-]+)"|argv\.includes\("--([a-z0-9-]+)"\)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
    assert.ok(read.length > 0 || f === "backend.ts", `${f}: the scan found the options it reads`);
    const known = usageOptions(command.usage);
    for (const o of read) assert.ok(known.has(o), `${f} reads --${o}, which its usage does not name`);
  }
  // train's numeric flags go through a helper: each of them is in its usage too.
  const train = fs.readFileSync(path.join(commandsDir, "train.ts"), "utf8");
  const nums = [...train.matchAll(/num\("([a-z-]+)",/g)].map((m) => m[1]);
  assert.deepEqual(nums, ["steps", "lr", "batch-size", "warmup", "seed"]);
  const { command } = (await import(path.join(commandsDir, "train.ts"))) as { command: Command };
  for (const o of nums) assert.ok(usageOptions(command.usage).has(o), `train --${o}`);
});

test("`study params --rnk 4` exits 2 and names --rank; the right spelling runs", () => {
  const study = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO_ROOT, "bin", "study.js"), ...args], { cwd: REPO_ROOT, encoding: "utf8" });
  const typo = study("params", "--strategy", "lora", "--rnk", "4");
  assert.equal(typo.status, 2, typo.stderr);
  assert.match(typo.stderr, /study: params: unknown option --rnk \(did you mean --rank\?\)/);
  assert.equal(typo.stdout, "", "nothing ran");
  const ok = study("params", "--strategy", "lora", "--rank", "4");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /trainable: [\d,]+\n$/);
});
