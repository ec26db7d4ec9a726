#!/usr/bin/env bash
# One idempotent setup for this project; fast (well under a second) when everything is present.
#   bash environment/setup.sh [--quiet] [--check-kernel]
# 1. Node >= 20.19 (tslab's require() of ESM-only packages such as arquero needs it).
# 2. `npm ci`, only when node_modules does not match package-lock.json.
# 3. A Python with Jupyter Notebook, nbconvert, nbclient and ipykernel, Chromium (figures are
#    rendered to PNG/SVG in headless Chromium), redis-server (the queue tests start their own;
#    the Debian service is not enabled or started here), and Debian's dataset-fashion-mnist where
#    neither the data mirror nor the cache has Fashion-MNIST. On Debian/Ubuntu as root they are
#    apt-installed; otherwise the exact commands are printed and the script stops.
# 4. A software WebGPU for the tests (Debian 12, x86_64): environment/webgpu-sw.sh unpacks Mesa's
#    lavapipe into .webgpu-sw/; the libraries it links against are apt-installed with the rest.
# 5. The project-local kernelspec environment/jupyter/kernels/tslab-study (committed; found through
#    JUPYTER_PATH, the user's own Jupyter is left alone): checked to resolve to this checkout, and
#    with --check-kernel (or after anything was installed) started once to run a cell at the repo root.
# Each install step prints one line; what npm, apt and dpkg print goes to .setup-logs/<step>.log
# (git-ignored), and its last lines are shown when the step fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
quiet=0
check_kernel=0
for a in "$@"; do
  case $a in
    --quiet) quiet=1 ;;
    --check-kernel) check_kernel=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$a' (use --quiet, --check-kernel)" >&2; exit 2 ;;
  esac
done
say() { if [ "$quiet" = 0 ]; then echo "setup: $*"; fi; }
die() { echo "setup: error: $*" >&2; exit 1; }
installed=0
logdir=.setup-logs
# step NAME WHAT CMD...: runs CMD with its output in $logdir/NAME.log behind one line
# "setup: WHAT ... ok (N s)"; when CMD fails, prints the log's tail and exits with CMD's status.
step() {
  local name=$1 what=$2 log="$logdir/$1.log" rc=0 t0=$SECONDS
  shift 2
  mkdir -p "$logdir"
  if [ "$quiet" = 0 ]; then printf 'setup: %s (log: %s) ... ' "$what" "$log"; fi
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    if [ "$quiet" = 0 ]; then echo "ok ($((SECONDS - t0)) s)"; fi
    return 0
  fi
  if [ "$quiet" = 0 ]; then echo "failed"; fi
  {
    echo "setup: error: $what failed (exit $rc); the last lines of $log:"
    # npm follows a usage error with its whole usage text: left out, so that the error itself shows.
    sed '/^npm error Usage:$/,/^npm error Run "npm help /d' "$log" | tail -n 25 | sed 's/^/  | /'
  } >&2
  exit "$rc"
}

# 1. Node
command -v node >/dev/null || die "Node.js >= 20.19 is required and 'node' is not on PATH (https://nodejs.org/en/download)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node $(node -v) is too old: this project needs >= 20.19 (require() of ESM-only packages under tslab)"

# 2. npm packages
if ! node environment/check-modules.js 2>/dev/null; then
  step npm-ci "node_modules is missing or differs from package-lock.json: npm ci" npm ci --no-audit --no-fund
  node environment/check-modules.js || die "npm ci finished but node_modules still differs from package-lock.json"
  installed=1
fi

# 3. Jupyter (a Python that has it) and Chromium
jupyter_modules="nbclient nbconvert nbformat ipykernel notebook jupyter_client"
# find_spec locates the modules without importing them (importing costs ~0.7 s).
has_jupyter='import sys, importlib.util as u; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))'
find_python() {
  local py
  for py in "${STUDY_PYTHON:-}" /usr/bin/python3 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    # shellcheck disable=SC2086
    if "$py" -c "$has_jupyter" $jupyter_modules 2>/dev/null; then command -v "$py"; return 0; fi
  done
  return 1
}
find_chromium() {
  local c
  for c in "${STUDY_CHROMIUM:-}" /usr/bin/chromium chromium chromium-browser google-chrome-stable google-chrome; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 || continue
    # Ubuntu's chromium-browser is a stub that asks for snap; a real browser prints its version.
    if "$c" --version 2>/dev/null | grep -qiE 'chrom(e|ium) [0-9]'; then command -v "$c"; return 0; fi
  done
  return 1
}
apt_pkgs=()
python=""
chromium=""
python=$(find_python) || apt_pkgs+=(jupyter-notebook jupyter-nbconvert python3-nbclient python3-ipykernel)
chromium=$(find_chromium) || apt_pkgs+=(chromium fonts-liberation fonts-dejavu-core)
command -v redis-server >/dev/null 2>&1 || apt_pkgs+=(redis-server)
# Fashion-MNIST (03 and 05 read it): Debian's package, unless the data mirror or the cache has it.
mirror=${STUDY_DATA_MIRROR-$root/../shared/data}
fmnist=fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "/usr/share/datasets/$fmnist" ] && { [ -z "$mirror" ] || [ ! -f "$mirror/$fmnist" ]; } && [ ! -f "${STUDY_DATA_DIR:-$root/data/cache}/$fmnist" ] \
    && [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ]; then
  apt_pkgs+=(dataset-fashion-mnist)
fi
webgpu_sw=0
if [ "$(uname -m)" = x86_64 ] && grep -qs '^VERSION_ID="12"' /etc/os-release; then
  webgpu_sw=1
  if [ ! -f .webgpu-sw/icd.json ]; then
    # soname:package for what lavapipe and the Vulkan loader need (most come with Chromium).
    have=$(ldconfig -p 2>/dev/null)
    for pair in libvulkan.so.1:libvulkan1 libLLVM-15.so.1:libllvm15 libdrm.so.2:libdrm2 libwayland-client.so.0:libwayland-client0 \
        libX11-xcb.so.1:libx11-xcb1 libxcb-dri3.so.0:libxcb-dri3-0 libxcb-present.so.0:libxcb-present0 libxcb-randr.so.0:libxcb-randr0 \
        libxcb-shm.so.0:libxcb-shm0 libxcb-sync.so.1:libxcb-sync1 libxcb-xfixes.so.0:libxcb-xfixes0 libxshmfence.so.1:libxshmfence1; do
      case $have in *"${pair%%:*} "*) ;; *) [ "$(id -u)" = 0 ] && apt_pkgs+=("${pair#*:}") ;; esac
    done
  fi
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -r /etc/debian_version ]; then
    export DEBIAN_FRONTEND=noninteractive
    step apt-update "apt-get update" apt-get update
    # Without recommends: chromium's and jupyter's would pull in daemons (udev, avahi-daemon).
    step apt-install "installing ${apt_pkgs[*]} (apt-get)" apt-get install -y --no-install-recommends "${apt_pkgs[@]}"
    installed=1
  elif [ "${apt_pkgs[*]}" = "redis-server" ]; then
    # Only the queue tests need it, and they skip without it.
    echo "setup: note: redis-server is missing, so the queue tests will be skipped (sudo apt-get install -y --no-install-recommends redis-server)" >&2
  else
    {
      echo "setup: missing: ${apt_pkgs[*]}"
      echo "  Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends ${apt_pkgs[*]}"
      if [ -z "$python" ]; then
        echo "  or with pip:    python3 -m pip install 'notebook==6.*' nbconvert nbclient ipykernel"
        echo "                  (and export STUDY_PYTHON=/path/to/that/python3 unless it is /usr/bin/python3)"
      fi
      if [ -z "$chromium" ]; then
        echo "  or any Chrome/Chromium build: export STUDY_CHROMIUM=/path/to/chrome"
      fi
      if ! command -v redis-server >/dev/null 2>&1; then
        echo "  or any redis-server >= 6.2 on PATH (only the queue tests need it)"
      fi
      echo "then run 'bash environment/setup.sh' again."
    } >&2
    exit 1
  fi
fi
[ -n "$python" ] || python=$(find_python) || die "no Python with $jupyter_modules after installation (set STUDY_PYTHON)"
[ -n "$chromium" ] || chromium=$(find_chromium) || die "no Chromium after installation (set STUDY_CHROMIUM)"
if [ "$webgpu_sw" = 1 ] && [ ! -f .webgpu-sw/icd.json ]; then
  step webgpu-sw "unpacking Mesa's software Vulkan (lavapipe) for the webgpu tests into .webgpu-sw/" bash environment/webgpu-sw.sh
  [ -f .webgpu-sw/icd.json ] || echo "setup: note: $(tail -n 1 "$logdir/webgpu-sw.log"); the tests run without the webgpu backend" >&2
fi

# 5. The project kernelspec. JUPYTER_PATH entries come first in Jupyter's search path, so this
#    one wins over any user-wide kernelspec of the same name.
export JUPYTER_PATH="$root/environment/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
for f in kernel.json kernel.sh; do
  [ -f "environment/jupyter/kernels/tslab-study/$f" ] || die "environment/jupyter/kernels/tslab-study/$f is missing (git checkout it)"
done
[ -x node_modules/.bin/tslab ] || die "node_modules/.bin/tslab is missing"

if [ "$check_kernel" = 1 ] || [ "$installed" = 1 ]; then
  rm -f "$logdir/kernel-cwd.txt"
  step kernel "starting the tslab-study kernel once" "$python" - "$root" "$logdir/kernel-cwd.txt" <<'PY'
import sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="tslab-study", cwd=sys.argv[1], startup_timeout=120)
try:
    seen = []
    kc.execute_interactive("console.log(process.cwd())", timeout=120,
                           output_hook=lambda m: seen.append(m["content"].get("text", "")))
    with open(sys.argv[2], "w") as f:
        f.write("".join(seen).strip())
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    del kc  # before interpreter teardown, which otherwise logs a spurious error from __del__
PY
  out=$(cat "$logdir/kernel-cwd.txt")
  [ "$out" = "$root" ] || die "the kernel started in '$out', expected the repository root $root"
fi

say "ok: node $(node -v), python $python, chromium $chromium, kernel tslab-study -> $root"
