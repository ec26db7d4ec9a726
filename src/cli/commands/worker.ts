// `study worker`: takes runs from a sweep's Redis queue and runs them here with the code of a local
// sweep (src/studies/queue-worker.ts), until SIGINT/SIGTERM.
import type { Command } from "../command";
import { numOpt, opt, parseArgs } from "../command";
import type { BackendChoice } from "../../runtime/backend";

const USAGE = `usage: study worker --queue redis://host:port [options]

Takes runs from the queue of sweeps started with sweep(base, variants, { queue }) (or STUDY_QUEUE)
and runs each here, with the same code as a local sweep, returning its record, metrics and results
to the sweep. Prints one line per run start, finish and failure. Ctrl-C or SIGTERM stops it: a run
in progress goes back to the queue for another worker. Checkpoints go to this machine's run store;
with a shared one (STUDY_RUNS_DIR on a network file system) a run taken up by another worker
resumes from its last checkpoint.

options:
  --queue URL         redis://[[user]:password@]host[:port][/db], rediss://... for TLS (default: STUDY_QUEUE)
  --concurrency N     runs at once in this process (default 1; one worker per GPU is the usual setup)
  --backend NAME      tfjs-node-gpu, tfjs-node, webgpu, wasm, cpu (default: STUDY_BACKEND or the chooser's pick)
  --root DIR          run store (default: STUDY_RUNS_DIR or runs/)
  --lock-seconds S    job lock; the job of a worker that died is taken up again 1 to 2 locks later (default 30)
  --name NAME         this worker's name in logs and on its jobs (default: host:pid)

example: STUDY_RUNS_DIR=/mnt/shared/runs npx study worker --queue redis://:secret@queue-host:6379 --backend tfjs-node-gpu`;

export const command: Command = {
  summary: "take runs from a sweep's Redis queue and run them here (sweeps across machines)",
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv);
    const url = opt(args, "queue") ?? process.env.STUDY_QUEUE;
    if (!url) throw new Error("give the queue: --queue redis://host:port (or set STUDY_QUEUE)\n\n" + USAGE);
    const concurrency = numOpt(args, "concurrency", 1)!;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency must be a positive integer, got ${concurrency}`);
    const lockSeconds = numOpt(args, "lock-seconds", 30)!;
    if (!(lockSeconds > 0)) throw new Error(`--lock-seconds must be positive, got ${lockSeconds}`);
    const root = opt(args, "root");
    const path = require("node:path") as typeof import("node:path");
    const { startWorker } = require("../../studies/queue-worker") as typeof import("../../studies/queue-worker");
    const { redactor } = require("../../studies/queue") as typeof import("../../studies/queue");
    const redact = redactor(url);
    const worker = await startWorker({
      url, concurrency, lockSeconds, backend: opt(args, "backend") as BackendChoice | undefined, root: root ? path.resolve(root) : undefined, name: opt(args, "name"),
    });
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
        // A second signal while stopping exits at once (Node's default for SIGINT/SIGTERM).
        process.stderr.write(`study worker: ${signal}, stopping\n`);
        worker.stop().then(resolve, (e: unknown) => {
          process.stderr.write(redact(`study worker: stopping: ${e instanceof Error ? e.message : String(e)}\n`));
          resolve();
        });
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
    return 0;
  },
};
