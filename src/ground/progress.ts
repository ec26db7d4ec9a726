// Progress for long work: a redrawn bar on a terminal, plain lines otherwise (logs, CI), and a
// live-updating display cell inside a tslab notebook kernel (tslab is imported lazily, only
// there). STUDY_PROGRESS=bar|plain|notebook|off overrides the detection.

export type ProgressMode = "bar" | "plain" | "notebook" | "off";

export interface Progress {
  /** Sets the amount done (absolute) and an optional status text (e.g. "loss 0.412"). */
  update(done: number, status?: string): void;
  /** Final update; the bar ends with a newline. */
  finish(status?: string): void;
}

interface TslabDisplay { html(s: string): void; text(s: string): void }

/** True inside a tslab kernel process. */
export function inNotebook(): boolean {
  return process.argv.some((a) => /tslab/.test(a)) && process.argv.includes("kernel");
}

export function progressMode(): ProgressMode {
  const env = process.env.STUDY_PROGRESS;
  if (env === "bar" || env === "plain" || env === "notebook" || env === "off") return env;
  if (inNotebook()) return "notebook";
  return process.stderr.isTTY ? "bar" : "plain";
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(sec).padStart(2, "0")}s`;
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** What a custom `format` sees: amounts, seconds elapsed and the estimated seconds left. */
export interface ProgressState {
  done: number;
  total: number;
  elapsed: number;
  eta: number;
  status?: string;
}

export interface ProgressOptions {
  mode?: ProgressMode;
  unit?: string;
  minIntervalMs?: number;
  /** Work already done before this session (not counted in the rate). */
  start?: number;
  /** Replaces the default line `label done/total unit [elapsed < eta, rate] status`. */
  format?: (s: ProgressState) => string;
}

/** "1h05m", "3m07s". */
export { fmtTime as formatDuration };

/** A progress reporter for `total` units of work labelled `label`. */
export function createProgress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const mode = opts.mode ?? progressMode();
  const unit = opts.unit ?? "it";
  const t0 = Date.now();
  let last = 0;
  let lastDone = -1;
  let display: TslabDisplay | undefined;
  if (mode === "notebook") {
    try {
      // Lazy: tslab is only loadable (and only meaningful) inside the kernel.
      display = (require("tslab") as { newDisplay(): TslabDisplay }).newDisplay();
    } catch {
      display = undefined;
    }
  }
  const line = (done: number, status?: string) => {
    const el = (Date.now() - t0) / 1000;
    // Rate and ETA count only this session's work (a resumed run starts at `start`).
    const rate = (done - (opts.start ?? 0)) / Math.max(el, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : NaN;
    const text = opts.format
      ? opts.format({ done, total, elapsed: el, eta, status })
      : `${label} ${done}/${total} ${unit} [${fmtTime(el)} < ${fmtTime(eta)}, ${rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s]${status ? ` ${status}` : ""}`;
    return { el, rate, eta, text };
  };
  const render = (done: number, status: string | undefined, final: boolean) => {
    const now = Date.now();
    const interval = opts.minIntervalMs ?? (mode === "plain" ? 10_000 : 200);
    lastDone = done;
    if (!final && now - last < interval) return;
    last = now;
    const { text } = line(done, status);
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    switch (mode) {
      case "off":
        return;
      case "plain":
        process.stderr.write(text + "\n");
        return;
      case "bar": {
        const width = 24;
        const fill = Math.round(frac * width);
        process.stderr.write(`\r${"█".repeat(fill)}${"░".repeat(width - fill)} ${text}\x1b[K${final ? "\n" : ""}`);
        return;
      }
      case "notebook": {
        if (!display) { if (final) process.stdout.write(text + "\n"); return; }
        const pct = (frac * 100).toFixed(1);
        try {
          // Executed notebooks are untrusted and hide HTML: headless runs show the line as text.
          if (process.env.STUDY_HEADLESS === "1") return display.text(text);
          display.html(
            `<div style="font-family:monospace"><div style="background:#eee;width:320px;height:10px">` +
              `<div style="background:#4c78a8;width:${pct}%;height:10px"></div></div>${escapeHtml(text)}</div>`,
          );
        } catch {
          // Not inside an executing kernel cell (tslab says "Not ready"): plain lines instead.
          display = undefined;
          process.stderr.write(text + "\n");
        }
        return;
      }
    }
  };
  return {
    update: (done, status) => render(done, status, false),
    finish: (status) => render(lastDone < 0 ? total : lastDone, status, true),
  };
}
