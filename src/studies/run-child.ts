// A run process: runStudy in a process of its own (forked by src/studies/run-process.ts, reused from
// run to run). A local sweep runs here so that a run that crashes its process (out of memory, an
// abort in native code) fails that run, not the notebook's kernel, and so that the kernel's event
// loop stays free for the live progress display; a `study worker` runs its jobs here so that
// training never delays the renewal of a job's lock. It never sees the queue or the sweep: a config
// comes in, progress and the outcome go out.
import { BackendChoice, initBackend } from "../runtime/backend";
import type { RunProgress } from "./experiment";
import { checkInputs } from "./inputs";
import { StudyConfig, runStudy } from "./kinds";

export type ToRunProcess = { type: "run"; id: string; config: StudyConfig; root: string };
export type FromRunProcess =
  | { type: "ready"; backend: string }
  | { type: "progress"; id: string; progress: RunProgress }
  | { type: "done"; id: string; reused: boolean }
  | { type: "error"; id: string; message: string }
  | { type: "fatal"; message: string };

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function send(m: FromRunProcess, then?: () => void): void {
  // A parent gone (its channel closed) means the job is another worker's now: stop at once.
  if (!process.connected) process.exit(0);
  process.send!(m, undefined, undefined, (e: Error | null) => (e ? process.exit(0) : then?.()));
}

async function main(): Promise<void> {
  const parent = process.ppid;
  // A worker killed with SIGKILL cannot stop its run; the run notices at its next step (the
  // parent's pid changes) or when the event loop comes round (the channel closes).
  const orphaned = () => process.ppid !== parent;
  process.on("disconnect", () => process.exit(0));
  const backend = process.argv[2] as BackendChoice | undefined; // the worker's --backend, when given
  try {
    // Before any job: loading a GPU backend takes seconds, and fails here rather than in a run.
    send({ type: "ready", backend: (await initBackend(backend ? { prefer: backend } : {})).choice });
  } catch (e) {
    send({ type: "fatal", message: message(e) }, () => process.exit(1));
    return;
  }
  process.on("message", (m: ToRunProcess) => {
    if (m.type !== "run") return;
    let last = 0;
    const onProgress = (progress: RunProgress) => {
      if (orphaned()) process.exit(0);
      const now = Date.now();
      if (progress.phase === "train" && now - last < 200) return; // every measurement; steps at most 5 times a second
      last = now;
      send({ type: "progress", id: m.id, progress });
    };
    (async () => {
      checkInputs([m.config], `run ${m.id}`);
      const o = await runStudy(m.config, { root: m.root, backend, progress: "off", onProgress });
      send({ type: "done", id: m.id, reused: o.out.reused });
    })().catch((e: unknown) => send({ type: "error", id: m.id, message: message(e) }));
  });
}

if (require.main === module) void main();
