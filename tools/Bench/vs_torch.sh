#!/usr/bin/env bash
# One round of side-by-side measurements: each workload runs under PyTorch (Debian python3-torch, 2 threads)
# and then ours with --compare against the PyTorch lines, so every ratio is measured at the same time.
# Usage: bash tools/Bench/vs_torch.sh OUTDIR [resnet|conv|gemm ...]   (default: all)
set -u
out=${1:?OUTDIR}; shift
mkdir -p "$out"
parts=${*:-resnet conv gemm}
here=$(cd "$(dirname "$0")" && pwd)
bench="dotnet $here/bin/Release/net10.0/Bench.dll"
py=/usr/bin/python3
stamp() { echo "# $1 load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%H:%M:%S)" | tee -a "$out/log.txt" >&2; }
pair() { # name torch-args -- bench-args
  local name=$1; shift; local targs=() bargs=()
  while [ "$1" != "--" ]; do targs+=("$1"); shift; done; shift; bargs=("$@")
  stamp "$name"
  $py "${targs[@]}" > "$out/$name.torch.jsonl"
  $bench "${bargs[@]}" --save "$out/$name.ours.jsonl" --compare "$out/$name.torch.jsonl" 2>>"$out/log.txt" | tee -a "$out/compare.jsonl"
}
for p in $parts; do case $p in
  resnet) pair resnet "$here/torch_resnet_step.py" resnet18-step -- resnet18-step ;;
  conv)
    pair conv3x3 "$here/torch_resnet_step.py" conv -- conv
    pair conv3x3s2 "$here/torch_resnet_step.py" conv --cout 128 --stride 2 -- conv --cout 128 --stride 2
    pair conv1x1s2 "$here/torch_resnet_step.py" conv --cout 128 --kernel 1 --stride 2 -- conv --cout 128 --kernel 1 --stride 2
    pair stem "$here/torch_resnet_step.py" conv --res 224 --cin 3 --kernel 7 --stride 2 -- conv --res 224 --cin 3 --kernel 7 --stride 2 ;;
  gemm) stamp gemm
    $py "$here/torch_gemm.py" --sizes 1024,2048 > "$out/gemm.torch.jsonl"
    $bench gemm --sizes 1024,2048 --save "$out/gemm.ours.jsonl" 2>>"$out/log.txt" ;;
esac; done
stamp done
