#!/usr/bin/env bash
# A software WebGPU for the tests: Mesa's lavapipe (a Vulkan driver that runs on the CPU) from
# Debian 12's backports, unpacked into .webgpu-sw/ (git-ignored) and never installed, so that the
# model tests also run on the webgpu backend (Dawn over Vulkan) on machines without a GPU.
# Debian 12's own Mesa 22.3 lavapipe is refused by Dawn ("Vulkan shaderUniform*ArrayDynamicIndexing
# required"); 25.0 is accepted. The tests add it to the machine's drivers (VK_ADD_DRIVER_FILES,
# test/support/backends.ts); the backend chooser never picks a software adapter unless asked.
#
#   bash environment/webgpu-sw.sh [DIR]      # DIR defaults to .webgpu-sw/ beside environment/
#
# Needs dpkg, and curl (or Python); the libraries the driver links against (libvulkan1,
# libllvm15, libdrm2, the xcb and wayland client libraries) come from Debian 12 itself (setup.sh
# apt-installs them). Prints one line; exits 0 with a note when it cannot (then the tests run
# without webgpu, as before), 1 only when a download does not match its checksum.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/.webgpu-sw}
lib=$dir/libvulkan_lvp.so
icd=$dir/icd.json
note() { echo "webgpu-sw: $*"; }

if [ -f "$lib" ] && [ -f "$icd" ]; then exit 0; fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then note "skipped: Linux x86_64 only (webgpu tests need a GPU adapter here)"; exit 0; fi
command -v dpkg >/dev/null || { note "skipped: no dpkg (this is Debian 12's package)"; exit 0; }

deb_name="mesa-vulkan-drivers_25.0.7-2~bpo12+1_amd64.deb"
deb_url="http://deb.debian.org/debian/pool/main/m/mesa/$deb_name"
deb_sha="3899f1800424c60a05df5d6913076a526ca8fdbabec43672cd397563d1ca3263"
index_url="http://deb.debian.org/debian/dists/bookworm-backports/main/binary-amd64/Packages.xz"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/webgpu-sw.XXXXXX") || exit 0
trap 'rm -rf "$tmp"' EXIT

fetch() { # fetch URL FILE
  if command -v curl >/dev/null; then curl -fsSL --retry 2 -o "$2" "$1"
  else python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"; fi
}

# The pinned build; when backports has moved on (the archive keeps only current versions), the
# current one, checked against the SHA256 of the backports index.
if ! fetch "$deb_url" "$tmp/mesa.deb" 2>/dev/null; then
  if ! fetch "$index_url" "$tmp/Packages.xz" 2>/dev/null; then note "skipped: $deb_url and $index_url are not reachable (offline?)"; exit 0; fi
  read -r file deb_sha < <(python3 - "$tmp/Packages.xz" <<'PY'
import lzma, sys
for para in lzma.open(sys.argv[1]).read().decode().split("\n\n"):
    f = dict(l.split(": ", 1) for l in para.splitlines() if ": " in l and not l.startswith(" "))
    if f.get("Package") == "mesa-vulkan-drivers":
        print(f["Filename"], f["SHA256"]); break
PY
)
  [ -n "${file:-}" ] || { note "skipped: no mesa-vulkan-drivers in $index_url"; exit 0; }
  deb_url="http://deb.debian.org/debian/$file"
  fetch "$deb_url" "$tmp/mesa.deb" || { note "skipped: $deb_url is not reachable"; exit 0; }
fi
got=$(sha256sum "$tmp/mesa.deb" | cut -d' ' -f1)
if [ "$got" != "$deb_sha" ]; then echo "webgpu-sw: error: $deb_url has sha256 $got, expected $deb_sha" >&2; exit 1; fi

dpkg -x "$tmp/mesa.deb" "$tmp/x" || { note "skipped: dpkg -x could not unpack $deb_url"; exit 0; }
so=$(find "$tmp/x" -name libvulkan_lvp.so | head -1)
[ -n "$so" ] || { note "skipped: no libvulkan_lvp.so in $deb_url"; exit 0; }
missing=$(ldd "$so" 2>/dev/null | awk '/not found/ { print $1 }' | tr '\n' ' ')
if [ -n "$missing" ]; then note "skipped: the driver needs libraries this machine lacks: $missing(Debian 12: apt-get install libvulkan1 libllvm15 libwayland-client0 libx11-xcb1 libxcb-dri3-0 libxcb-present0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxshmfence1)"; exit 0; fi

# Into place in one rename: a half-written folder is never taken for a finished one.
mkdir -p "$tmp/out"
cp "$so" "$tmp/out/libvulkan_lvp.so"
printf '{\n  "file_format_version": "1.0.1",\n  "ICD": { "library_path": "%s", "api_version": "1.4.305" }\n}\n' "$lib" > "$tmp/out/icd.json"
echo "$deb_url $deb_sha" > "$tmp/out/SOURCE"
rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp/out" "$dir" || { note "skipped: could not write $dir"; exit 0; }
note "Mesa lavapipe from $(basename "$deb_url") in $dir"
