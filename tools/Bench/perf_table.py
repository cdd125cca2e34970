#!/usr/bin/env python3
"""Runs the CPU benchmark set and writes docs/performance.md from its JSON lines.

The set: `peak`, `gemm` (its default shapes), every conv phase of ResNet-18's 11 conv shapes at batch 16 (112² input)
and `resnet18-step`; then, where Debian's PyTorch is installed (/usr/bin/python3 with torch), rounds of the same
ResNet-18 step in PyTorch and in ours, interleaved in time, so their ratio is measured under the same load. The JSON lines are kept beside the page (docs/performance.jsonl), so every figure in the page can
be traced to a Bench line, and `--from` rewrites the page from saved lines without running anything.

    python3 tools/Bench/perf_table.py                      # build Bench (Release), run the set, write the page
    python3 tools/Bench/perf_table.py --runs 20            # more timed runs per measurement
    python3 tools/Bench/perf_table.py --torch-rounds 0     # skip the PyTorch rounds
    python3 tools/Bench/perf_table.py --from docs/performance.jsonl   # only rewrite the page

Only the standard library is used. The page is stamped with the date, the machine (CPU model and cores from
/proc/cpuinfo), the commit and the load average before and after the run.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH_DLL = os.path.join(ROOT, "tools", "Bench", "bin", "Release", "net10.0", "Bench.dll")

# ResNet-18's conv shapes at a 112² input, batch 16: (input plane, cin, cout, kernel, stride).
CONV_SHAPES = [
    (112, 3, 64, 7, 2),
    (28, 64, 64, 3, 1), (14, 128, 128, 3, 1), (7, 256, 256, 3, 1), (4, 512, 512, 3, 1),
    (28, 64, 128, 3, 2), (14, 128, 256, 3, 2), (7, 256, 512, 3, 2),
    (28, 64, 128, 1, 2), (14, 128, 256, 1, 2), (7, 256, 512, 1, 2),
]


def machine():
    model, cores = platform.processor() or "unknown CPU", os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        flags = "AVX-512" if " avx512f" in text else "AVX2" if " avx2" in text else "no AVX2"
    except OSError:
        pass
    return f"{model}, {cores} cores visible, {flags}"


def commit():
    try:
        rev = subprocess.check_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], text=True).strip()
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "engine", "tools/Bench"]).returncode != 0
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def json_lines(cmd, log, what):
    """Runs cmd; returns the JSON objects it printed on stdout (one per line); exits naming `what` if it failed."""
    log.write("+ " + " ".join(cmd) + "\n")
    log.flush()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"perf_table: {what} failed ({r.returncode}):\n{r.stderr}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def bench(args, lines, log):
    lines.extend(json_lines(["dotnet", BENCH_DLL] + args, log, " ".join(args)))


TORCH_PYTHON = "/usr/bin/python3"
TORCH_STEP = os.path.join(ROOT, "tools", "Bench", "torch_resnet_step.py")


def torch_available():
    try:
        return subprocess.run([TORCH_PYTHON, "-c", "import torch"], capture_output=True).returncode == 0
    except OSError:
        return False


def torch_rounds(rounds, runs, lines, log):
    """Alternates PyTorch's and our ResNet-18 step, `rounds` times each; every line gets its round number."""
    for r in range(1, rounds + 1):
        step = [TORCH_PYTHON, TORCH_STEP, "resnet18-step", "--threads", "2", "--runs", str(runs)]
        lines.extend(dict(l, engine="pytorch", round=r) for l in json_lines(step, log, "the PyTorch step"))
        ours = []
        bench(["resnet18-step", "--runs", str(runs)], ours, log)
        lines.extend(dict(l, engine="ours", round=r) for l in ours)


def run_set(runs, rounds):
    subprocess.run(["dotnet", "build", os.path.join(ROOT, "tools", "Bench"), "-c", "Release", "-v", "quiet", "-nologo"], check=True)
    stamp = {"kind": "stamp", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "machine": machine(), "commit": commit(), "load_before": load(), "runs": runs}
    lines = []
    bench(["peak", "--runs", str(max(runs, 7))], lines, sys.stderr)
    bench(["gemm", "--runs", str(runs)], lines, sys.stderr)
    for res, cin, cout, k, s in CONV_SHAPES:
        bench(["conv", "--batch", "16", "--res", str(res), "--cin", str(cin), "--cout", str(cout), "--kernel", str(k),
               "--stride", str(s), "--runs", str(runs)], lines, sys.stderr)
    bench(["resnet18-step", "--runs", str(runs)], lines, sys.stderr)
    if rounds > 0 and torch_available():
        torch_rounds(rounds, runs, lines, sys.stderr)
    elif rounds > 0:
        print(f"perf_table: {TORCH_PYTHON} has no torch (apt-get install python3-torch): no PyTorch rounds", file=sys.stderr)
    stamp["load_after"] = load()
    return [stamp] + lines


def pct(gflops, peak):
    return f"{100 * gflops / peak:.0f} %" if peak else ""


def markdown(lines):
    stamp = next(l for l in lines if l.get("kind") == "stamp")
    peaks = [l for l in lines if l.get("workload") == "peak"]
    peak_all = max((l["gflops"] for l in peaks if "isa" in l), default=None)
    out = []
    w = out.append
    w("# CPU performance")
    w("")
    w("Written by `tools/Bench/perf_table.py` from the Bench JSON lines in `docs/performance.jsonl`; rerun the script to")
    w("reproduce a figure rather than retyping it. Medians of the timed runs after warm-up; float32.")
    w("")
    w(f"- **When**: {stamp['date']}; commit {stamp['commit']}; {stamp['runs']} timed runs per measurement.")
    w(f"- **Machine**: {stamp['machine']}. Load average (1, 5, 15 min) {stamp['load_before']} before, {stamp['load_after']} after.")
    w("- **Noise**: a shared virtual machine with 2 cores; single passes of the same workload vary by 10–30 % with")
    w("  the neighbours' load. This page is one pass: compare builds with runs interleaved in time, or inside one")
    w("  process with Bench's `--ab NAME`, never against these numbers.")
    w("")
    w("## Peak")
    w("")
    w("| measurement | threads | GFLOPS (median) | best |")
    w("|---|---:|---:|---:|")
    for l in peaks:
        what = l.get("kernel") or f"FMA chains ({l.get('isa')})"
        w(f"| {what} | {l['threads']} | {l['gflops']} | {l.get('best_gflops', '')} |")
    w("")
    w(f"Percentages below are of the {peak_all} GFLOPS all-thread peak of this pass." if peak_all else "")
    w("")
    w("## GEMM")
    w("")
    w("| shape | m × n × k | op | threads | ms | GFLOPS | % of peak |")
    w("|---|---|---|---:|---:|---:|---:|")
    for l in (l for l in lines if l.get("workload") == "gemm"):
        w(f"| {l['shape']} | {l['m']} × {l['ncols']} × {l['k']} | {l['trans']} | {l['threads']} | {l['ms']} | {l['gflops']} | {pct(l['gflops'], peak_all)} |")
    w("")
    w("## Convolutions (ResNet-18 at 112², batch 16)")
    w("")
    w("The input plane is named; the algorithm each phase takes is in [cpu-convolutions.md](cpu-convolutions.md).")
    w("")
    w("| conv | input | phase | ms | GFLOPS | % of peak |")
    w("|---|---|---|---:|---:|---:|")
    for l in (l for l in lines if l.get("workload") == "conv"):
        name = f"{l['kernel']}×{l['kernel']} s{l['stride']} {l['c']}→{l['k']}"
        w(f"| {name} | {l['h']}² | {l['phase']} | {l['ms']} | {l['gflops']} | {pct(l['gflops'], peak_all)} |")
    w("")
    w("## ResNet-18 training step")
    w("")
    w("| batch | input | classes | threads | ms | images/s |")
    w("|---:|---|---:|---:|---:|---:|")
    for l in (l for l in lines if l.get("workload") == "resnet18-step" and "engine" not in l):
        w(f"| {l['batch']} | {l['res']}² | {l['classes']} | {l['threads']} | {l['ms']} | {l['images_per_s']} |")
    w("")
    paired = {}
    for l in (l for l in lines if l.get("workload") == "resnet18-step" and "engine" in l):
        paired.setdefault(l["round"], {})[l["engine"]] = l
    rounds = [(r, p["pytorch"], p["ours"]) for r, p in sorted(paired.items()) if "pytorch" in p and "ours" in p]
    if rounds:
        ratios = sorted(t["ms"] / o["ms"] for _, t, o in rounds)
        mid = len(ratios) // 2
        median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        w("## ResNet-18 step against PyTorch")
        w("")
        w("The same step (batch 16, 112², 200 classes, SGD momentum) in Debian's PyTorch (`tools/Bench/torch_resnet_step.py`,")
        w("OpenBLAS + oneDNN, 2 threads) and in ours, alternating, so both see the same load.")
        w("")
        w("| round | PyTorch ms | ours ms | PyTorch / ours |")
        w("|---:|---:|---:|---:|")
        for r, t, o in rounds:
            w(f"| {r} | {t['ms']} | {o['ms']} | {t['ms'] / o['ms']:.2f}× |")
        w("")
        w(f"Median PyTorch / ours over {len(rounds)} rounds: **{median:.2f}×** (range {ratios[0]:.2f}–{ratios[-1]:.2f}×).")
        w("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="timed runs per measurement (default 10)")
    ap.add_argument("--torch-rounds", type=int, default=3, help="rounds of PyTorch vs ours on the ResNet-18 step (default 3; 0: none)")
    ap.add_argument("--from", dest="src", help="rewrite the page from saved JSON lines instead of running the set")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    ap.add_argument("--jsonl", default=os.path.join(ROOT, "docs", "performance.jsonl"))
    a = ap.parse_args()
    if a.src:
        with open(a.src) as f:
            lines = [json.loads(l) for l in f if l.strip()]
    else:
        lines = run_set(a.runs, a.torch_rounds)
        with open(a.jsonl + ".tmp", "w") as f:
            for l in lines:
                f.write(json.dumps(l, ensure_ascii=False) + "\n")
        os.replace(a.jsonl + ".tmp", a.jsonl)
    with open(a.out + ".tmp", "w") as f:
        f.write(markdown(lines))
    os.replace(a.out + ".tmp", a.out)
    print(f"perf_table: wrote {a.out}" + ("" if a.src else f" and {a.jsonl}"), file=sys.stderr)


if __name__ == "__main__":
    main()
