// What every run records about where it ran: versions, git commit and dirty flag, machine, backend.
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { BackendReport, backendReport } from "./backend";
import { REPO_ROOT } from "../ground/root";

export interface Versions {
  node: string;
  tfjs: string;
  tslab?: string;
  typescript?: string;
  project: string;
}

export interface GitState {
  commit: string | null;
  dirty: boolean | null;
}

export interface MachineInfo {
  platform: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  hostname: string;
}

export interface RunEnvironment {
  versions: Versions;
  git: GitState;
  machine: MachineInfo;
  backend: BackendReport | null;
}

export { REPO_ROOT };

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(require("node:fs").readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function versions(): Versions {
  const pkgVersion = (name: string): string | undefined => {
    const j = readJson(path.join(REPO_ROOT, "node_modules", name, "package.json"));
    return typeof j?.version === "string" ? j.version : undefined;
  };
  const own = readJson(path.join(REPO_ROOT, "package.json"));
  return {
    node: process.versions.node,
    tfjs: tf.version.tfjs,
    tslab: pkgVersion("tslab"),
    typescript: pkgVersion("tslab/node_modules/typescript") ?? pkgVersion("typescript"),
    project: typeof own?.version === "string" ? own.version : "unknown",
  };
}

export function gitState(cwd = REPO_ROOT): GitState {
  const git = (...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const commit = git("rev-parse", "HEAD");
    // Run outputs and caches are ignored, and figures/ (reference outputs, rewritten by the
    // notebooks while they run) is left out, so "dirty" means source changes only.
    const dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures").length > 0;
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    hostname: os.hostname(),
  };
}

/** Everything a run record needs about its environment; call after initBackend(). */
export function runEnvironment(): RunEnvironment {
  return { versions: versions(), git: gitState(), machine: machineInfo(), backend: backendReport() ?? null };
}

/**
 * The environment as one line, for the top of an executed notebook: the commit (and whether the
 * source had uncommitted changes), the backend and the versions, so that a reader knows what
 * produced the numbers below it. Nothing machine-specific: the same inputs print the same line.
 */
export function provenanceLine(env: RunEnvironment): string {
  const { git, backend, versions: v } = env;
  const commit = git.commit ? `commit ${git.commit}${git.dirty ? " with uncommitted changes" : ""}` : "not in a git checkout";
  const tools = [`node ${v.node}`, `tfjs ${v.tfjs}`, ...(v.tslab ? [`tslab ${v.tslab}`] : []), `project ${v.project}`];
  return `${commit} · backend ${backend ? backend.choice : "none"} · ${tools.join(", ")}`;
}
