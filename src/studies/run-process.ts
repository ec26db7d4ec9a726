// The parent side of a run process (src/studies/run-child.ts): a forked process that runs one
// config at a time with runStudy, reused from run to run (datasets and the backend stay loaded, as
// in one process). Used by local sweeps and by `study worker`.
import { ChildProcess, fork } from "node:child_process";
import * as path from "node:path";
import type { BackendChoice } from "../runtime/backend";
import { REPO_ROOT } from "../ground/root";
import type { RunProgress } from "./experiment";
import type { StudyConfig } from "./kinds";
import type { FromRunProcess, ToRunProcess } from "./run-child";

/** A run that ended because its process did (a crash, out of memory, killed): not the run's own error. */
export class RunProcessExit extends Error {}

const signalName = (s: NodeJS.Signals | null, code: number | null) => (s ? `${s}${s === "SIGKILL" ? ", e.g. the kernel's OOM killer" : ""}` : `exit code ${code}`);

export class RunProcess {
  readonly ready: Promise<string>;
  busy = false;
  exited = false;
  private readonly child: ChildProcess;
  private stderrTail = "";
  private current?: { id: string; onProgress: (p: RunProgress) => void; resolve: (reused: boolean) => void; reject: (e: Error) => void };

  constructor(backend: BackendChoice | undefined) {
    const env = { ...process.env };
    delete env.STUDY_QUEUE; // the run process never talks to the queue
    // stderr passes through and its tail is kept, for the message when the process dies.
    this.child = fork(path.join(__dirname, "run-child.ts"), backend ? [backend] : [], { cwd: REPO_ROOT, env, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "pipe", "ipc"] });
    this.child.stderr!.on("data", (d: Buffer) => {
      process.stderr.write(d);
      this.stderrTail = (this.stderrTail + d.toString("utf8")).slice(-4000);
    });
    this.ready = new Promise<string>((resolve, reject) => {
      this.child.on("message", (m: FromRunProcess) => {
        if (m.type === "ready") return resolve(m.backend);
        if (m.type === "fatal") return reject(new Error(`the run process could not start: ${m.message}`));
        const c = this.current;
        if (!c || m.id !== c.id) return;
        if (m.type === "progress") return c.onProgress(m.progress);
        this.current = undefined;
        if (m.type === "done") c.resolve(m.reused);
        else c.reject(new Error(m.message));
      });
      this.child.on("exit", (code, signal) => {
        this.exited = true;
        const last = this.stderrTail.trim().split("\n").filter((l) => l.trim()).slice(-3).join(" | ");
        const e = new RunProcessExit(`its run process exited (${signalName(signal, code)})${last ? `; its last output: ${last}` : ""}`);
        reject(e);
        const c = this.current;
        this.current = undefined;
        c?.reject(e);
      });
    });
    this.ready.catch(() => undefined); // awaited by its user; an exit later is a run's error
  }

  /** Runs one config; resolves to whether the run store already held it finished. */
  run(id: string, config: StudyConfig, root: string, onProgress: (p: RunProgress) => void): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      if (this.exited) return reject(new RunProcessExit("its run process had exited"));
      this.current = { id, onProgress, resolve, reject };
      const m: ToRunProcess = { type: "run", id, config, root };
      this.child.send(m);
    });
  }

  /** At once, even in the middle of a step: a run's files are crash-safe, it resumes from its last checkpoint. */
  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}
