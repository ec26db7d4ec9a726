// Where data lives: the data directory (downloads and decoded caches; `data/cache` in the repo
// unless STUDY_DATA_DIR says otherwise) and the optional read-only mirror, searched before any
// network access. Relative values are taken from the repository root, so notebooks, tests and the
// CLI agree whatever their working directory.
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../ground/root";

export function dataDir(): string {
  const env = process.env.STUDY_DATA_DIR;
  return env ? path.resolve(REPO_ROOT, env) : path.join(REPO_ROOT, "data", "cache");
}

/** The mirror beside the checkout that the project is developed and tested with (`../shared/data`). */
export const SIBLING_MIRROR = path.resolve(REPO_ROOT, "..", "shared", "data");

/**
 * STUDY_DATA_MIRROR; when unset, `../shared/data` if that folder exists; `STUDY_DATA_MIRROR=`
 * (empty) turns the mirror off.
 */
export function mirrorDir(): string | undefined {
  const env = process.env.STUDY_DATA_MIRROR;
  if (env !== undefined) return env ? path.resolve(REPO_ROOT, env) : undefined;
  return fs.existsSync(SIBLING_MIRROR) ? SIBLING_MIRROR : undefined;
}

/** Decoded-image caches live here. */
export function imageCacheDir(): string {
  return path.join(dataDir(), "images");
}
