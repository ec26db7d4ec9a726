// The repository root (the folder holding package.json), found from this file: every path the
// project writes or reads by default (runs/, data/, figures/) is relative to it, whatever the
// working directory of the process (CLI, tests, a notebook kernel).
import * as path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
