#!/usr/bin/env bash
# Builds the GPU bundle: what environment/gpu-check.sh needs on a GPU machine that has the NVIDIA
# driver and PyTorch but no Node, no Vulkan loader and no network, in well under the 64 MiB that
# travel there (the working tree plus this folder).
#
#   bash environment/gpu-bundle.sh [OUT]          # OUT defaults to .gpu/ (git-ignored)
#
# OUT/ holds:
#   node.xz           this machine's Node binary, stripped of its symbol table, xz-compressed
#   dawn.node.xz      Dawn's WebGPU for Node (node_modules/webgpu/dist/linux-x64/dawn.node), stripped, xz
#   app.tar.xz        the check (bench/gpu-check.ts and the batch worker bundled by esbuild into
#                     lib/app/), the files the tfjs backends load at run time (tfjs-backend-wasm's
#                     wasm-out/, the webgpu package's loader), the ViT parity fixtures, the PyTorch
#                     scripts (bench/torch_gpu.py, torch_cpu.py) and BUILD.json
#   data/mnist/*.gz   MNIST's four official files (the study's data), from the data mirror
#   vulkan/*.deb      the Vulkan loader (Debian's libvulkan1, `apt-get download`; unpacked there
#                     with `dpkg -x` into a private prefix, never installed)
#   MANIFEST.sha256   checksums, verified before anything is unpacked
#
# The compressed binaries are kept and reused while their source is unchanged (a stamp records its
# sha256 and the xz level), so a rebuild after a code change takes seconds.
#
# Environment:
#   GPU_BUNDLE_XZ_LEVEL   xz preset for a fresh compression (default 6; 0 is ~7x faster, ~6 MB bigger;
#                         a kept file of at least this level is reused)
#   GPU_BUNDLE_XZ_THREADS xz threads (default 1: the machine is shared)
#   GPU_BUNDLE_NODE       the Node binary to ship (default: the one running node here)
#   GPU_BUNDLE_FIXTURES   folder of the ViT parity fixtures (default ../shared/fixtures/vit-parity)
#   GPU_BUNDLE_MNIST      folder with MNIST's .gz files (default $STUDY_DATA_MIRROR/mnist, else
#                         ../shared/data/mnist, else data/cache)
#   GPU_BUNDLE_VULKAN=0   leave the Vulkan loader out (WebGPU then needs the machine's own libvulkan.so.1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/.gpu}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LEVEL="${GPU_BUNDLE_XZ_LEVEL:-6}"
THREADS="${GPU_BUNDLE_XZ_THREADS:-1}"
LIMIT_MIB=64

say() { echo "gpu-bundle: $*"; }
die() { echo "gpu-bundle: $*" >&2; exit 1; }

[[ "$LEVEL" =~ ^[0-9]$ ]] || die "GPU_BUNDLE_XZ_LEVEL=$LEVEL is not an xz preset 0-9"
command -v xz >/dev/null || die "xz is needed (Debian: apt-get install xz-utils)"
NODE_BIN="${GPU_BUNDLE_NODE:-$(command -v node || true)}"
[[ -x "$NODE_BIN" ]] || die "no Node binary to ship (set GPU_BUNDLE_NODE)"
NODE_BIN="$(readlink -f "$NODE_BIN")"
ESBUILD="$ROOT/node_modules/.bin/esbuild"
[[ -x "$ESBUILD" ]] || die "node_modules/.bin/esbuild is missing: run npm ci (it comes with tsx)"
DAWN="$ROOT/node_modules/webgpu/dist/linux-x64/dawn.node"
[[ -f "$DAWN" ]] || die "$DAWN is missing: run npm ci"
WASM_PKG="$ROOT/node_modules/@tensorflow/tfjs-backend-wasm"
[[ -d "$WASM_PKG/wasm-out" ]] || die "$WASM_PKG/wasm-out is missing: run npm ci"
case "$("$NODE_BIN" -p 'process.platform + "-" + process.arch')" in
  linux-x64) ;;
  *) die "the bundle is for x86-64 Linux; $NODE_BIN is not" ;;
esac

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# ---- compressed binaries, reused while unchanged ---------------------------------------------
# pack SRC NAME: strip SRC's symbol table (the dynamic symbols that Node and addons link by stay),
# xz it to OUT/NAME.xz, unless OUT/NAME.xz.stamp says it was made from the same file at >= LEVEL.
pack() {
  local src="$1" name="$2" sum stamp
  sum="$(sha256sum "$src" | cut -d' ' -f1)"
  stamp="$OUT/$name.xz.stamp"
  if [[ -f "$OUT/$name.xz" && -f "$stamp" ]]; then
    local old_sum old_level
    read -r old_sum old_level < "$stamp" || true
    if [[ "$old_sum" == "$sum" && "${old_level:-0}" -ge "$LEVEL" ]]; then
      say "$name.xz kept (same $name, xz -$old_level)"
      return
    fi
  fi
  local t0=$SECONDS tmp="$STAGE/$name"
  if command -v strip >/dev/null && strip -o "$tmp" "$src" 2>/dev/null; then :; else cp "$src" "$tmp"; fi
  xz -"$LEVEL" -T"$THREADS" -c "$tmp" > "$OUT/$name.xz.partial"
  mv "$OUT/$name.xz.partial" "$OUT/$name.xz"
  echo "$sum $LEVEL" > "$stamp"
  rm -f "$tmp"
  say "$name.xz made (xz -$LEVEL, $((SECONDS - t0)) s)"
}
pack "$NODE_BIN" node
pack "$DAWN" dawn.node

# ---- the check, bundled ------------------------------------------------------------------------
APP="$STAGE/lib/app"
mkdir -p "$APP"
# sharp (libvips, 18 MB) decodes JPEG/PNG; the check's data (MNIST idx files) never needs it, so it
# is replaced by a module that says so if it is ever called.
cat > "$STAGE/sharp-stub.cjs" <<'EOF'
"use strict";
function sharp() {
  throw new Error("sharp (image decoding) is not in the GPU bundle: only MNIST-format data can be read here");
}
sharp.concurrency = () => 0;
module.exports = sharp;
EOF
# Left out: packages that load native code or are loaded lazily and never by the check (tslab,
# danfojs-node, playwright-core, tfjs-node); webgpu is shipped beside the bundle (it loads dawn.node
# from its own folder), and tfjs-backend-wasm's package.json is looked up at run time to find wasm-out/.
"$ESBUILD" "$ROOT/bench/gpu-check.ts" "$ROOT/src/data/batch-worker.ts" \
  --bundle --platform=node --target=node20 --format=cjs --outdir="$APP" --entry-names='[name]' \
  --alias:sharp="$STAGE/sharp-stub.cjs" \
  --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --external:tslab --external:'tslab/*' --external:danfojs-node --external:playwright-core \
  --external:@tensorflow/tfjs-backend-wasm/package.json \
  --legal-comments=none --log-level=warning
[[ -f "$APP/gpu-check.js" && -f "$APP/batch-worker.js" ]] || die "esbuild made no bundle"

# The files the backends load at run time, where the bundle's require.resolve finds them.
WASM_DST="$STAGE/node_modules/@tensorflow/tfjs-backend-wasm"
mkdir -p "$WASM_DST"
cp "$WASM_PKG/package.json" "$WASM_DST/"
cp -r "$WASM_PKG/wasm-out" "$WASM_DST/"
# tfjs's stock (single-threaded) wasm backend looks for its .wasm beside the script that runs it.
for f in "$WASM_DST"/wasm-out/*.wasm; do ln -s "../../node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/$(basename "$f")" "$APP/$(basename "$f")"; done
WEBGPU_DST="$STAGE/node_modules/webgpu"
mkdir -p "$WEBGPU_DST/dist/linux-x64"
cp "$ROOT/node_modules/webgpu/package.json" "$ROOT/node_modules/webgpu/index.js" "$ROOT/node_modules/webgpu/LICENSE.md" "$WEBGPU_DST/"

mkdir -p "$STAGE/bench"
cp "$ROOT/bench/torch_gpu.py" "$ROOT/bench/torch_cpu.py" "$STAGE/bench/"

FIXTURES="${GPU_BUNDLE_FIXTURES:-$ROOT/../shared/fixtures/vit-parity}"
if [[ -f "$FIXTURES/micro.json" ]]; then
  mkdir -p "$STAGE/fixtures/vit-parity"
  cp "$FIXTURES"/*.json "$FIXTURES"/*.safetensors "$STAGE/fixtures/vit-parity/"
  [[ -f "$FIXTURES/README.md" ]] && cp "$FIXTURES/README.md" "$STAGE/fixtures/vit-parity/"
else
  say "WARNING: no parity fixtures at $FIXTURES (set GPU_BUNDLE_FIXTURES): the check's parity test will fail"
fi

# ---- MNIST, the study's data (already gzip-compressed: copied as they are) -----------------------
MNIST_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
MNIST=""
for d in "${GPU_BUNDLE_MNIST:-}" "${STUDY_DATA_MIRROR:+$STUDY_DATA_MIRROR/mnist}" "$ROOT/../shared/data/mnist" "$ROOT/data/cache"; do
  [[ -n "$d" && -f "$d/${MNIST_FILES[0]}" ]] && { MNIST="$d"; break; }
done
rm -rf "$OUT/data"
if [[ -n "$MNIST" ]]; then
  mkdir -p "$OUT/data/mnist"
  for f in "${MNIST_FILES[@]}"; do cp "$MNIST/$f" "$OUT/data/mnist/"; done
else
  say "WARNING: MNIST not found (set GPU_BUNDLE_MNIST to a folder with ${MNIST_FILES[*]}): the check's study will fail"
fi

# ---- the Vulkan loader, downloaded (not installed) ---------------------------------------------
VULKAN_NOTE=""
if [[ "${GPU_BUNDLE_VULKAN:-1}" == "0" ]]; then
  rm -rf "$OUT/vulkan"
  VULKAN_NOTE="left out (GPU_BUNDLE_VULKAN=0)"
  say "Vulkan loader left out (GPU_BUNDLE_VULKAN=0): WebGPU on the GPU machine then needs its own libvulkan.so.1"
elif compgen -G "$OUT/vulkan/libvulkan1_*.deb" >/dev/null; then
  VULKAN_NOTE="kept: $(cd "$OUT/vulkan" && ls libvulkan1_*.deb)"
  say "Vulkan loader $VULKAN_NOTE"
else
  # libvulkan1 depends on libc6 (>= 2.34) only, which the machine has (dawn.node needs glibc 2.34 too).
  mkdir -p "$STAGE/deb"
  fetch() { (cd "$STAGE/deb" && apt-get download libvulkan1) >"$STAGE/apt.log" 2>&1; }
  if command -v apt-get >/dev/null && { fetch || { [[ "$(id -u)" == 0 ]] && apt-get update -qq >>"$STAGE/apt.log" 2>&1 && fetch; }; }; then
    mkdir -p "$OUT/vulkan"
    mv "$STAGE"/deb/libvulkan1_*.deb "$OUT/vulkan/"
    VULKAN_NOTE="downloaded: $(cd "$OUT/vulkan" && ls libvulkan1_*.deb)"
    say "Vulkan loader $VULKAN_NOTE"
  else
    VULKAN_NOTE="NOT in the bundle: apt-get download libvulkan1 failed"
    say "WARNING: 'apt-get download libvulkan1' failed ($(tail -1 "$STAGE/apt.log" 2>/dev/null || echo 'no apt-get')): the bundle has no Vulkan loader, so WebGPU on the GPU machine needs its own libvulkan.so.1 (GPU_BUNDLE_VULKAN=0 skips this step)"
  fi
fi

# ---- BUILD.json, the tarball, the manifest ---------------------------------------------------------
COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -1)"
ROOT="$ROOT" "$NODE_BIN" -e '
const [commit, dirty, node, level, vulkan] = process.argv.slice(1);
const tfjs = require(process.env.ROOT + "/node_modules/@tensorflow/tfjs-core/package.json").version;
console.log(JSON.stringify({ commit, dirty: dirty !== "", built: new Date().toISOString(), node, tfjs, xzLevel: Number(level), vulkan }, null, 2));
' "$COMMIT" "$DIRTY" "$("$NODE_BIN" --version)" "$LEVEL" "$VULKAN_NOTE" > "$STAGE/BUILD.json"
# The app (14 MB) compresses in seconds: always at least at -6, whatever the binaries' level.
tar -C "$STAGE" -cf - lib node_modules bench BUILD.json $([[ -d "$STAGE/fixtures" ]] && echo fixtures) | xz -"$(( LEVEL > 6 ? LEVEL : 6 ))" -T"$THREADS" > "$OUT/app.tar.xz"

(cd "$OUT" && find . -type f ! -name MANIFEST.sha256 ! -name '*.stamp' ! -name '*.partial' -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum > MANIFEST.sha256)

# ---- sizes ---------------------------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
echo "gpu-bundle: $OUT"
TOTAL=0
while read -r f; do
  b=$(stat -c %s "$OUT/$f")
  TOTAL=$((TOTAL + b))
  printf '  %-40s %8s MiB\n' "$f" "$(mib "$b")"
done < <(cd "$OUT" && find . -type f ! -name '*.stamp' ! -name '*.partial' -printf '%P\n' | LC_ALL=C sort)
printf '  %-40s %8s MiB (what travels is this plus the working tree: at most %d MiB)\n' "total" "$(mib "$TOTAL")" "$LIMIT_MIB"
if (( TOTAL >= LIMIT_MIB * 1048576 )); then die "the bundle is $TOTAL bytes: over $LIMIT_MIB MiB"; fi
