#!/bin/sh
# Started by Jupyter with the connection file as $1 (see kernel.json). Runs the project's own tslab
# from the repository root (four levels up from this file) so that notebooks can import "./src/...":
# tslab resolves imports against its cwd and refuses files outside it.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
cd "$root"
if [ ! -x node_modules/.bin/tslab ]; then
  echo "tslab-study kernel: $root/node_modules/.bin/tslab is missing; run 'bash environment/setup.sh' in $root" >&2
  exit 1
fi
export STUDY_REPO_ROOT="$root"
# tslab-watch.cjs: module resolution's file watchers off (a change under node_modules during a long
# cell would fail the next one; see the file).
exec node --require "$root/environment/jupyter/tslab-watch.cjs" node_modules/tslab/bin/tslab kernel --config-path "$1"
