#!/usr/bin/env bash
# Runs the CUDA tests and the CUDA benchmarks on a Linux GPU machine with only the NVIDIA driver and the CUDA
# libraries (e.g. pip's nvidia-cublas-cu12 / nvidia-cudnn-cu12); no .NET or CUDA SDK needed.
# Usage: ./run-gpu.sh [extra test-runner arguments]      Results: ./results/ (test log, bench JSON lines)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

# 1. The bundled .NET runtime, unpacked once.
if [[ ! -x .dotnet/dotnet ]]; then
  mkdir -p .dotnet && tar -C .dotnet -xJf dotnet-runtime.tar.xz || { echo "run-gpu: cannot unpack dotnet-runtime.tar.xz" >&2; exit 1; }
fi
export DOTNET_ROOT="$here/.dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet="$DOTNET_ROOT/dotnet"

# 2. CUDA libraries from pip wheels (site-packages/nvidia/*/lib) ahead of the loader path; the engine's own
#    resolver probes these too, but cuBLAS/cuDNN load their sibling libraries through LD_LIBRARY_PATH.
libdirs=()
prefixes=("${VIRTUAL_ENV:-}" "${CONDA_PREFIX:-}" "$HOME/.local" /usr/local /usr /opt/conda)
if command -v python3 >/dev/null; then
  while IFS= read -r sp; do prefixes+=("$sp"); done < <(python3 -c 'import site,sys; print("\n".join(site.getsitepackages()+[site.getusersitepackages()]))' 2>/dev/null)
fi
for p in "${prefixes[@]}"; do
  [[ -n $p ]] || continue
  for d in "$p"/nvidia/*/lib "$p"/lib/python3*/site-packages/nvidia/*/lib "$p"/lib/python3*/dist-packages/nvidia/*/lib; do
    [[ -d $d ]] && libdirs+=("$d")
  done
done
if (( ${#libdirs[@]} )); then
  joined=$(printf '%s\n' "${libdirs[@]}" | awk '!seen[$0]++' | paste -sd:)
  export LD_LIBRARY_PATH="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[[ -n ${CUDA_HOME:-} ]] && export LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "run-gpu: runtime $(cat RUNTIME_VERSION 2>/dev/null), LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

mkdir -p results
# 3. The CUDA tests (NUnit on Microsoft.Testing.Platform). Ignored tests print their one-line reason.
"$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "TestCategory=Cuda" --output Detailed --results-directory "$here/results" "$@" 2>&1 | tee results/cuda-tests.log
tests_rc=${PIPESTATUS[0]}

# 4. The benchmarks on the GPU (workloads that this build has; each prints JSON lines), after the tests.
available=$("$dotnet" bench/Bench.dll --help 2>&1 | awk 'f {print $1} /^workloads:/ {f=1}')
: > results/bench.jsonl
declare -A extra=([gemm]="" [conv]="" [resnet18-step]="" [gating]="--scope op,layer --path fused,composed")
for w in gemm conv resnet18-step gating; do
  if grep -qx "$w" <<<"$available"; then
    echo "run-gpu: bench $w --device cuda ${extra[$w]}"
    # shellcheck disable=SC2086
    "$dotnet" bench/Bench.dll "$w" --device cuda ${extra[$w]} 2>>results/bench.log | tee -a results/bench.jsonl
  else
    echo "run-gpu: bench workload '$w' is not in this build; skipped"
  fi
done
echo "run-gpu: tests exit code $tests_rc; results in $here/results"
exit "$tests_rc"
