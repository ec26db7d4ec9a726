#!/usr/bin/env bash
# The one script of a GPU visit: unpacks the bundle that environment/gpu-bundle.sh made (.gpu/),
# puts the Vulkan loader and the NVIDIA ICD in place, and runs, each phase within its share of the
# time, writing what it measures to OUT:
#   backend   what the backend chooser finds (adapter vendor and architecture)     backend.json
#   tests     parity fixtures, numerics against wasm, a training step per strategy   tests.json
#   bench     training-step and forward images/s, peak memory, TFLOP/s of ours       bench.json
#   torch     the same models and steps in PyTorch + timm, TF32 off and on          torch.json
#   study     full vs LoRA vs block expansion of ViT-B/16 through the studies layer  study.json
#   summary   ours / PyTorch per row, share of the fp32 peak                         summary.json
# and everything printed to OUT/check.log. No Node, Vulkan loader or network is needed there.
#
#   bash environment/gpu-check.sh OUT                                  # the GPU visit (~8 min)
#   STUDY_BACKEND=wasm GPU_CHECK_SIZE=tiny bash environment/gpu-check.sh OUT   # on a CPU, ~1 min
#
# Environment: STUDY_BACKEND (default: what the chooser picks: webgpu on the GPU); GPU_CHECK_SIZE
# full|tiny; GPU_CHECK_BUDGET seconds for everything (default 470 full, 300 tiny); GPU_BUNDLE (the
# bundle, default .gpu beside this folder); GPU_CHECK_WORK (where to unpack, default a temp folder,
# removed at the end unless GPU_CHECK_KEEP=1); STUDY_TORCH_PYTHON (the python with torch);
# STUDY_DAWN_OPTIONS (default enable-dawn-features=allow_unsafe_apis, for GPU timestamps).
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash environment/gpu-check.sh OUT-DIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 1
OUT="$(cd "$1" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${GPU_BUNDLE:-$ROOT/.gpu}"
SIZE="${GPU_CHECK_SIZE:-full}"
case "$SIZE" in
  full) BUDGET="${GPU_CHECK_BUDGET:-470}" ;;
  tiny) BUDGET="${GPU_CHECK_BUDGET:-300}" ;;
  *) echo "GPU_CHECK_SIZE=$SIZE: use full or tiny" >&2; exit 2 ;;
esac
T0=$(date +%s)
WORK="${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}"
LOG="$OUT/check.log"
: > "$LOG"

say() { echo "[gpu-check $(( $(date +%s) - T0 ))s] $*"; }

# xz, tar and dpkg where the machine has them; Python's lzma, tarfile and an ar reader otherwise.
unxz_to() { # unxz_to FILE.xz DEST
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
untar_xz() { # untar_xz FILE.tar.xz DIR
  if command -v xz >/dev/null && command -v tar >/dev/null; then xz -dc "$1" | tar -xf - -C "$2"
  else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"; fi
}
deb_x() { # deb_x FILE.deb DIR: dpkg -x, or its data.tar.* read with Python
  if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; return; fi
  python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not a .deb (ar) file"
pos = 8
while pos < len(data):
    name, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
        break
    pos += 60 + size + (size & 1)
EOF
}

unpack() {
  [[ -f "$BUNDLE/node.xz" && -f "$BUNDLE/app.tar.xz" ]] || { say "no bundle at $BUNDLE: build it with 'bash environment/gpu-bundle.sh' and carry .gpu"; return 1; }
  if command -v sha256sum >/dev/null && [[ -f "$BUNDLE/MANIFEST.sha256" ]]; then
    (cd "$BUNDLE" && sha256sum --quiet -c MANIFEST.sha256) || { say "the bundle does not match its MANIFEST.sha256 (an incomplete copy?)"; return 1; }
  fi
  mkdir -p "$WORK/bin" "$WORK/data"
  unxz_to "$BUNDLE/node.xz" "$WORK/bin/node" && chmod +x "$WORK/bin/node" || return 1
  if ! "$WORK/bin/node" --version >/dev/null 2>&1 && [[ -z "${GPU_CHECK_WORK:-}" ]]; then
    # A temp folder mounted noexec: unpack beside the checkout instead (git-ignored, removed at the end).
    say "$WORK/bin/node does not run there (noexec?): unpacking into $ROOT/.gpu-work"
    rm -rf "$WORK"
    WORK="$ROOT/.gpu-work"
    rm -rf "$WORK" && mkdir -p "$WORK/bin" "$WORK/data"
    unxz_to "$BUNDLE/node.xz" "$WORK/bin/node" && chmod +x "$WORK/bin/node" || return 1
    echo "$WORK" > "$OUT/.work"
  fi
  untar_xz "$BUNDLE/app.tar.xz" "$WORK" || return 1
  unxz_to "$BUNDLE/dawn.node.xz" "$WORK/node_modules/webgpu/dist/linux-x64/dawn.node" || return 1
  [[ -d "$BUNDLE/data/mnist" ]] && ln -sfn "$BUNDLE/data/mnist" "$WORK/data/mnist"
  NODE="$WORK/bin/node"
  APP="$WORK/lib/app/gpu-check.js"
  "$NODE" --version >/dev/null || { say "the bundled Node does not run here (glibc older than 2.28?)"; return 1; }
  say "unpacked into $WORK: $("$NODE" --version), $(cat "$WORK/BUILD.json" | tr -d '\n ' | cut -c1-200)"
  for deb in "$BUNDLE"/vulkan/*.deb; do
    [[ -f "$deb" ]] || continue
    deb_x "$deb" "$WORK/vulkan" || say "could not unpack $deb"
  done
  local loader
  loader="$(find "$WORK/vulkan" -name 'libvulkan.so.1' 2>/dev/null | head -1)"
  if [[ -n "$loader" ]]; then
    export LD_LIBRARY_PATH="$(dirname "$loader")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "Vulkan loader: $loader (LD_LIBRARY_PATH)"
  else
    say "no Vulkan loader in the bundle: WebGPU needs the machine's own libvulkan.so.1"
  fi
}

# The NVIDIA Vulkan driver (ICD): its json where the driver installed one, else one written here
# that points at libGLX_nvidia.so.0 (the library that implements NVIDIA's Vulkan entry points).
nvidia_icd() {
  local icd="" f lib=""
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.*.json; do
    [[ -f "$f" ]] && { icd="$f"; break; }
  done
  if [[ -z "$icd" ]]; then
    lib="$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 / { print $NF; exit }')"
    if [[ -z "$lib" ]]; then
      for f in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib; do
        [[ -f "$f/libGLX_nvidia.so.0" ]] && { lib="$f/libGLX_nvidia.so.0"; break; }
      done
    fi
    if [[ -n "$lib" ]]; then
      icd="$WORK/vulkan/icd.d/nvidia_icd.json"
      mkdir -p "$(dirname "$icd")"
      printf '{\n  "file_format_version": "1.0.0",\n  "ICD": { "library_path": "%s", "api_version": "1.3.0" }\n}\n' "$lib" > "$icd"
      say "wrote $icd (library_path $lib): the machine has no nvidia_icd.json"
    fi
  fi
  if [[ -n "$icd" ]]; then
    export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
    say "NVIDIA Vulkan ICD: $icd (VK_DRIVER_FILES, VK_ICD_FILENAMES)"
  else
    say "no NVIDIA Vulkan driver: no nvidia_icd.json and no libGLX_nvidia.so.0 (a container whose NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-unset} lacks 'graphics' gets CUDA but not Vulkan)"
  fi
  if command -v nvidia-smi >/dev/null; then
    say "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2 | tr '\n' ';')"
  fi
  say "NVIDIA libraries for Vulkan: $(ldconfig -p 2>/dev/null | grep -oE 'lib(GLX_nvidia|nvidia-glvkspirv|nvidia-glcore|nvidia-gpucomp)\.so[.0-9]*' | sort -u | tr '\n' ' ')"
  say "glibc $(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') (dawn.node needs 2.34)"
}

STATUS=()
# phase NAME END: runs the phase with GPU_CHECK_DEADLINE = T0 + END (seconds), killed 45 s after it.
phase() {
  local name="$1" end="$2"; shift 2
  local deadline=$((T0 + end)) now rc t
  now=$(date +%s)
  t=$((deadline - now + 45)); (( t < 30 )) && t=30
  say "== $name (until +${end}s)"
  if command -v timeout >/dev/null; then GPU_CHECK_DEADLINE=$deadline timeout --kill-after=10 "$t" "$@"; else GPU_CHECK_DEADLINE=$deadline "$@"; fi
  rc=$?
  (( rc == 124 || rc == 137 )) && say "$name ran out of time (killed after $t s)"
  STATUS+=("$name=$rc")
  say "== $name: exit $rc"
  return $rc
}

python_with_torch() {
  local p
  for p in ${STUDY_TORCH_PYTHON:-} python3 /usr/bin/python3 python; do
    command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null && { echo "$p"; return; }
  done
  for p in ${STUDY_TORCH_PYTHON:-} python3 /usr/bin/python3 python; do command -v "$p" >/dev/null && { echo "$p"; return; }; done
}

main() {
  say "GPU check, size $SIZE, budget ${BUDGET}s, out $OUT"
  unpack || { STATUS+=("unpack=1"); return 1; }
  nvidia_icd
  export STUDY_PROGRESS=plain STUDY_OFFLINE=1 STUDY_DATA_MIRROR="$WORK/data" STUDY_DATA_DIR="$WORK/data/cache" STUDY_RUNS_DIR="$WORK/runs"
  export GPU_CHECK_FIXTURES="$WORK/fixtures/vit-parity" GPU_CHECK_SIZE="$SIZE"
  local default_dawn=0
  if [[ -z "${STUDY_DAWN_OPTIONS+x}" ]]; then export STUDY_DAWN_OPTIONS="enable-dawn-features=allow_unsafe_apis"; default_dawn=1; fi
  # Shares of the budget: the ends of the phases, in seconds after the start.
  local b=$BUDGET
  phase backend $((b * 5 / 100)) "$NODE" "$APP" backend "$OUT"
  local choice
  choice="$("$NODE" -p 'require(process.argv[1]).choice' "$OUT/backend.json" 2>/dev/null)"
  if [[ -z "${STUDY_BACKEND:-}" && "$choice" != "webgpu" && $default_dawn == 1 ]]; then
    say "no WebGPU with STUDY_DAWN_OPTIONS=$STUDY_DAWN_OPTIONS: probing again without it, with the Vulkan loader's messages"
    STUDY_DAWN_OPTIONS="" VK_LOADER_DEBUG=error,warn phase backend $((b * 8 / 100)) "$NODE" "$APP" backend "$OUT"
    choice="$("$NODE" -p 'require(process.argv[1]).choice' "$OUT/backend.json" 2>/dev/null)"
    [[ "$choice" == "webgpu" ]] && export STUDY_DAWN_OPTIONS=""
  fi
  export STUDY_BACKEND="${STUDY_BACKEND:-$choice}"
  local ours_size="$SIZE"
  if [[ "$SIZE" == "full" && "$STUDY_BACKEND" != "webgpu" ]]; then
    ours_size=tiny
    say "WebGPU is not available here (backend.json says why): ours runs on $STUDY_BACKEND at the tiny size; PyTorch still runs at full size"
  fi
  GPU_CHECK_SIZE=$ours_size phase tests $((b * 20 / 100)) "$NODE" "$APP" tests "$OUT"
  GPU_CHECK_SIZE=$ours_size phase bench $((b * 54 / 100)) "$NODE" "$APP" bench "$OUT"
  local py
  py="$(python_with_torch)"
  if [[ -n "$py" ]]; then
    "$NODE" "$APP" torch-job > "$WORK/torch-job.json" && phase torch $((b * 73 / 100)) "$py" "$WORK/bench/torch_gpu.py" "$WORK/torch-job.json" "$OUT/torch.json"
  else
    echo '{"available": false, "reason": "no python3 on PATH"}' > "$OUT/torch.json"
    say "no python3: PyTorch not run"
  fi
  GPU_CHECK_SIZE=$ours_size phase study $((b * 97 / 100)) "$NODE" "$APP" study "$OUT"
  phase summary $((b * 99 / 100)) "$NODE" "$APP" summary "$OUT"
  say "phases: ${STATUS[*]}"
  say "files: $(cd "$OUT" && ls | tr '\n' ' ')"
  local s
  for s in "${STATUS[@]}"; do [[ "$s" == *=0 ]] || return 1; done
}

main 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
# (main ran in a subshell: a work folder it moved is named in OUT/.work)
if [[ -f "$OUT/.work" ]]; then WORK="$(cat "$OUT/.work")"; rm -f "$OUT/.work"; fi
if [[ "${GPU_CHECK_KEEP:-0}" != 1 && -z "${GPU_CHECK_WORK:-}" ]]; then rm -rf "$WORK"; fi
exit "$rc"
