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
exec node_modules/.bin/tslab kernel --config-path "$1"
