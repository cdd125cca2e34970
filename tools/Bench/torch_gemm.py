#!/usr/bin/python3
"""PyTorch CPU baseline for the "gemm" workload: same JSON line format, median of >= 5 timed runs after warm-up.

Usage: /usr/bin/python3 tools/Bench/torch_gemm.py [--sizes 1024,2048] [--threads 2] [--runs 7]
"""
import argparse, json, statistics, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="256,512,1024,2048")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=7)
args = p.parse_args()
torch.set_num_threads(args.threads)
shapes = [(s, s, s, "none", "square") for s in map(int, args.sizes.split(","))]
shapes += [(64, 3136, 576, "none", "conv-fwd"), (576, 3136, 64, "a", "conv-bwd-data"),
           (64, 576, 3136, "b", "conv-bwd-weight"), (8, 1000, 300, "none", "skinny-m"), (1000, 8, 300, "none", "skinny-n")]
for m, n, k, trans, label in shapes:
    torch.manual_seed(1)
    a = torch.rand(k, m).t() if "a" in trans else torch.rand(m, k)   # transposed views, as our bench passes them
    b = torch.rand(n, k).t() if "b" in trans else torch.rand(k, n)
    c = torch.empty(m, n)
    flops = 2.0 * m * n * k
    reps = max(1, min(1000, int(2e8 / flops)))
    def run():
        for _ in range(reps):
            torch.mm(a, b, out=c)
    for _ in range(2):
        run()
    times = []
    for _ in range(max(5, args.runs)):
        t0 = time.perf_counter(); run(); times.append((time.perf_counter() - t0) * 1e3 / reps)
    ms = statistics.median(times)
    print(json.dumps({"workload": "gemm-torch", "shape": label, "n": n if label == "square" else None, "m": m, "ncols": n, "k": k,
                      "trans": trans, "device": "cpu", "threads": args.threads, "ms": round(ms, 4),
                      "gflops": round(flops / ms / 1e6, 1), "min_ms": round(min(times), 4),
                      "best_gflops": round(flops / min(times) / 1e6, 1)}), flush=True)
