#!/usr/bin/python3
"""PyTorch CPU baseline for the "resnet18-step" and "conv" workloads: same JSON line format as tools/Bench,
median of >= 5 timed runs after warm-up.

Usage: /usr/bin/python3 tools/Bench/torch_resnet_step.py [resnet18-step|conv] [--threads 2] [--runs 5]
  resnet18-step: --batch 16 --res 112 --classes 200 (torchvision ResNet-18, SGD momentum 0.9, wd 5e-4)
  conv:          --batch 8 --res 56 --cin 64 --cout 64 --kernel 3 --stride 1 (fwd, bwd-data, bwd-weights)
"""
import argparse, json, statistics, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("workload", nargs="?", default="resnet18-step", choices=["resnet18-step", "conv"])
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--batch", type=int, default=None)
p.add_argument("--res", type=int, default=None)
p.add_argument("--classes", type=int, default=200)
p.add_argument("--cin", type=int, default=64)
p.add_argument("--cout", type=int, default=64)
p.add_argument("--kernel", type=int, default=3)
p.add_argument("--stride", type=int, default=1)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(1)


def median_ms(body, warmup=2, runs=5):
    for _ in range(warmup):
        body()
    times = []
    for _ in range(max(5, runs)):
        t0 = time.perf_counter(); body(); times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


if args.workload == "resnet18-step":
    import torchvision
    batch, res = args.batch or 16, args.res or 112
    model = torchvision.models.resnet18(num_classes=args.classes)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, res, res)
    y = torch.arange(batch) % args.classes

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    ms = median_ms(step, warmup=2, runs=args.runs)
    print(json.dumps({"workload": "resnet18-step-torch", "batch": batch, "res": res, "classes": args.classes,
                      "threads": args.threads, "device": "cpu", "ms": round(ms, 3),
                      "images_per_s": round(batch * 1000.0 / ms, 1)}), flush=True)
else:
    n, res, c, k, kern, s = args.batch or 8, args.res or 56, args.cin, args.cout, args.kernel, args.stride
    pad = kern // 2
    x = torch.rand(n, c, res, res) * 2 - 1
    w = torch.rand(k, c, kern, kern) * 2 - 1
    ho = (res + 2 * pad - kern) // s + 1
    dy = torch.rand(n, k, ho, ho) * 2 - 1
    flops = 2.0 * n * k * c * kern * kern * ho * ho
    # The same primitives autograd calls: forward, grad_input, grad_weight.
    phases = [("forward", lambda: F.conv2d(x, w, None, s, pad)),
              ("backward-data", lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, s, pad)),
              ("backward-weights", lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, s, pad))]
    with torch.no_grad():
        for phase, body in phases:
            ms = median_ms(body, warmup=1, runs=args.runs)
            print(json.dumps({"workload": "conv-torch", "phase": phase, "n": n, "c": c, "h": res, "w": res, "k": k,
                              "kernel": kern, "stride": s, "groups": 1, "threads": args.threads, "device": "cpu",
                              "ms": round(ms, 3), "gflops": round(flops / (ms * 1e6), 3)}), flush=True)
