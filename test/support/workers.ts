// `study worker` processes for the queue tests: real processes of bin/study.js on the cpu backend,
// their log lines kept (with the time each arrived) for the tests to read.
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { REPO_ROOT } from "../../src/ground/root";

export interface LogLine {
  at: number;
  text: string;
}

export interface WorkerProcess {
  name: string;
  proc: ChildProcess;
  lines: LogLine[];
  /** stdout and stderr as one text. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first line matching `re` (already there, or the next to come). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<LogLine>;
}

// Never left behind by a failing test (one exit listener for all of them).
const live = new Set<ChildProcess>();
process.on("exit", () => live.forEach((p) => p.kill("SIGKILL")));

export async function startWorkers(n: number, url: string, opts: { root: (i: number) => string; lockSeconds?: number; env?: NodeJS.ProcessEnv; prefix?: string }): Promise<WorkerProcess[]> {
  const workers = Array.from({ length: n }, (_, i) => startWorker(url, { name: `${opts.prefix ?? "w"}${i + 1}`, root: opts.root(i), lockSeconds: opts.lockSeconds, env: opts.env }));
  await Promise.all(workers.map((w) => w.waitFor(/taking runs from/, 120_000)));
  return workers;
}

export function startWorker(url: string, opts: { name: string; root: string; lockSeconds?: number; env?: NodeJS.ProcessEnv }): WorkerProcess {
  const args = [path.join(REPO_ROOT, "bin", "study.js"), "worker", "--queue", url, "--backend", "cpu", "--root", opts.root, "--name", opts.name];
  if (opts.lockSeconds) args.push("--lock-seconds", String(opts.lockSeconds));
  const proc = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, STUDY_PROGRESS: "off", ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: LogLine[] = [];
  const waiters: { re: RegExp; resolve: (l: LogLine) => void }[] = [];
  let text = "";
  const onData = (d: Buffer) => {
    text += d.toString();
    const parts = text.split("\n");
    text = parts.pop() ?? "";
    for (const t of parts) {
      const line = { at: Date.now(), text: t };
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(t)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
    }
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  live.add(proc);
  void exited.then(() => live.delete(proc));
  const output = () => lines.map((l) => l.text).join("\n") + (text ? `\n${text}` : "");
  return {
    name: opts.name, proc, lines, output, exited,
    waitFor(re, timeoutMs = 60_000) {
      const seen = lines.find((l) => re.test(l.text));
      if (seen) return Promise.resolve(seen);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${opts.name}: no line matching ${re} after ${timeoutMs} ms; output:\n${output()}`)), timeoutMs);
        const waiter = { re, resolve: (l: LogLine) => { clearTimeout(timer); resolve(l); } };
        waiters.push(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.includes(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`${opts.name} exited (${code ?? signal}) before a line matching ${re}; output:\n${output()}`));
        });
      });
    },
  };
}

/** Every log line of every worker that matches `re`, with its worker. */
export function linesMatching(workers: WorkerProcess[], re: RegExp): { worker: string; line: LogLine }[] {
  return workers.flatMap((w) => w.lines.filter((l) => re.test(l.text)).map((line) => ({ worker: w.name, line })));
}

/** SIGTERM to each, and their exits. */
export async function stopWorkers(workers: WorkerProcess[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }[]> {
  for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill("SIGTERM");
  return Promise.all(workers.map((w) => w.exited));
}
