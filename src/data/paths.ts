// Where data lives: the data directory (downloads and decoded caches; `data/cache` in the repo
// unless STUDY_DATA_DIR says otherwise) and the optional read-only mirror (STUDY_DATA_MIRROR),
// searched before any network access. Relative values are taken from the repository root, so
// notebooks (whose cwd is notebooks/) and the CLI agree.
import * as path from "node:path";
import { REPO_ROOT } from "../runtime/record";

export function dataDir(): string {
  const env = process.env.STUDY_DATA_DIR;
  return env ? path.resolve(REPO_ROOT, env) : path.join(REPO_ROOT, "data", "cache");
}

export function mirrorDir(): string | undefined {
  const env = process.env.STUDY_DATA_MIRROR;
  return env ? path.resolve(REPO_ROOT, env) : undefined;
}

/** Decoded-image caches live here. */
export function imageCacheDir(): string {
  return path.join(dataDir(), "images");
}
