// Runs a test body once per available backend (cpu, wasm, webgpu when an adapter exists), the
// way TensorFlow.js's own suites do. STUDY_TEST_BACKENDS=cpu,wasm narrows the list.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe } from "node:test";
import { availableBackends, BackendChoice, initBackend } from "../../src/runtime/backend";

// Mesa's software Vulkan driver that environment/setup.sh unpacks (environment/webgpu-sw.sh), added
// to the machine's own drivers before Dawn starts, so that the webgpu blocks run without a GPU too.
export const SOFTWARE_ICD = path.join(__dirname, "..", "..", ".webgpu-sw", "icd.json");
if (fs.existsSync(SOFTWARE_ICD) && process.env.VK_ADD_DRIVER_FILES === undefined) process.env.VK_ADD_DRIVER_FILES = SOFTWARE_ICD;

/** `describe` block per backend; `fn` registers tests that run with that backend active. */
export async function forEachBackend(title: string, fn: (backend: BackendChoice) => void): Promise<void> {
  for (const backend of await availableBackends()) {
    describe(`${title} [${backend}]`, { concurrency: 1 }, () => {
      // `before` hooks run in order with the tests, so each block switches the backend first.
      const { before } = require("node:test") as typeof import("node:test");
      before(async () => {
        await initBackend({ prefer: backend, force: true });
      });
      fn(backend);
    });
  }
}
