// The CPU benchmark's PyTorch reference: which BLAS it runs on, and the warning when that BLAS
// is the unoptimised reference one (every ratio against it would flatter ours).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describeBlas } from "../../src/cli/commands/bench";
import { REPO_ROOT } from "../../src/ground/root";

const cases = [
  {
    name: "Debian's reference BLAS",
    blas: { info: "generic", libraries: ["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"], reference: true, gemmGflops: 3.5 },
    line: "BLAS blas/libblas.so.3.11.0, single-thread sgemm 3.5 GFLOP/s",
    warns: true,
  },
  {
    name: "OpenBLAS through the alternatives",
    blas: { info: "generic", libraries: ["/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"], reference: false, gemmGflops: 53.4 },
    line: "BLAS openblas-pthread/libblas.so.3, openblas-pthread/libopenblasp-r0.3.21.so, single-thread sgemm 53.4 GFLOP/s",
    warns: false,
  },
  { name: "a wheel with MKL linked in", blas: { info: "mkl", libraries: [], reference: false, gemmGflops: 80 }, line: "BLAS mkl, single-thread sgemm 80 GFLOP/s", warns: false },
];

for (const c of cases) {
  test(`bench: the PyTorch reference's BLAS, ${c.name}`, () => {
    const d = describeBlas(c.blas);
    assert.equal(d.line, c.line);
    assert.equal(d.warning !== undefined, c.warns);
    if (c.warns) assert.match(d.warning!, /reference BLAS.*3\.5 GFLOP\/s.*apt-get install libopenblas0-pthread/);
  });
}

const PY = process.env.STUDY_TORCH_PYTHON ?? "/usr/bin/python3";
const hasTorch = spawnSync(PY, ["-c", "import torch"], { stdio: "ignore" }).status === 0;

type Info = { version: string; blas: { info: string; libraries: string[]; reference: boolean; gemmGflops: number } };
const info = (env: NodeJS.ProcessEnv = process.env): Info =>
  JSON.parse(execFileSync(PY, [path.join(REPO_ROOT, "bench", "torch_cpu.py"), "--info"], { encoding: "utf8", env })) as Info;
const NETLIB_DIR = "/usr/lib/x86_64-linux-gnu/blas";

const here = hasTorch ? info() : undefined;

test("bench: torch_cpu.py --info names the BLAS PyTorch links and measures its sgemm", { skip: here ? false : `no torch in ${PY}` }, () => {
  assert.match(here!.version, /^\d+\.\d+/);
  assert.ok(here!.blas.gemmGflops > 0);
  // Debian's build takes libblas.so.3 from the system, so the file it maps must be listed.
  if (here!.blas.info === "generic") assert.ok(here!.blas.libraries.some((l) => /libblas\.so/.test(l)), here!.blas.libraries.join(", "));
});

test("bench: torch_cpu.py --info flags the reference BLAS when it provides the matmuls", {
  skip: !here ? `no torch in ${PY}`
    : here.blas.info !== "generic" ? `PyTorch links its own BLAS (${here.blas.info}): the system's libblas is not used`
    : !fs.existsSync(path.join(NETLIB_DIR, "libblas.so.3")) ? `no reference BLAS in ${NETLIB_DIR}` : false,
}, () => {
  const forced = info({ ...process.env, LD_LIBRARY_PATH: NETLIB_DIR });
  assert.equal(forced.blas.reference, true, forced.blas.libraries.join(", "));
  assert.ok(forced.blas.libraries.some((l) => l.startsWith(NETLIB_DIR + "/")), forced.blas.libraries.join(", "));
});
