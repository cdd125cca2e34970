#!/usr/bin/env bash
# Compiles kernels/<name>.cu to kernels/ptx/<name>.ptx with clang-14's NVPTX back end (no CUDA SDK needed),
# only when the .cu (or any kernels/*.cuh) is newer than the .ptx. Usage: kernels/build-ptx.sh [--force] [name ...]
# Leaves kernels/moe_*.cu to their owner's rules only in that it compiles whatever .cu files exist.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
clang=${CLANG:-clang-14}
force=0
if [[ ${1:-} == --force ]]; then force=1; shift; fi
if ! command -v "$clang" >/dev/null 2>&1; then
  echo "build-ptx: $clang not found; keeping the committed PTX" >&2
  exit 0
fi
mkdir -p "$here/ptx"
if (( $# )); then names=("$@"); else names=(); for f in "$here"/*.cu; do names+=("$(basename "$f" .cu)"); done; fi
for name in "${names[@]}"; do
  src="$here/$name.cu"; out="$here/ptx/$name.ptx"
  fresh=1
  for dep in "$src" "$here"/*.cuh; do [[ -f $out && $out -nt $dep ]] || fresh=0; done
  if (( ! force && fresh )); then continue; fi
  echo "build-ptx: $name.cu -> ptx/$name.ptx"
  "$clang" -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -O3 -S \
    -I "$here" "$src" -o "$out.tmp"
  mv "$out.tmp" "$out"
done
