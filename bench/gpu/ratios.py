"""Prints PyTorch's time (and device memory for training) over ours for every model, metric and PyTorch variant
(> 1: Compiled.Nets is faster, or needs less)."""
import json
import sys

mine = json.load(open(sys.argv[1]))
ours = {r["model"]: r for r in mine["results"]}
theirs = json.load(open(sys.argv[2]))
print(f"GPU: {theirs['info']['gpu']}, PyTorch {theirs['info']['torch']} (CUDA {theirs['info']['cuda']}); our GEMM: {mine.get('gemm', '?')}")
if mine.get("tf32", False) != theirs["info"].get("tf32", False):
    sys.exit("ours and PyTorch's ran at different float32 matmul precisions (--tf32 on one side only)")
print("matmuls: " + ("TF32 on both sides" if mine.get("tf32", False) else "float32 on both sides"))
print(f"{'model':18} {'PyTorch':14} {'metric':22} {'ours':>9} {'PyTorch':>11} {'ratio':>7}")
for r in theirs["results"]:
    if "error" in r:
        print(f"{r['model']:18} {r['variant']:14} failed: {r['error']}")
        continue
    o = ours.get(r["model"])
    if o is None:
        print(f"{r['model']:18} {r['variant']:14} ours did not run (see the bench's output)")
        continue
    for metric in [k for k in r if k.endswith(("_ms", "_mb")) and k in o]:
        print(f"{r['model']:18} {r['variant']:14} {metric:22} {o[metric]:9.3f} {r[metric]:11.3f} {r[metric] / o[metric]:7.2f}x")
for name, o in ours.items():
    print(f"{name}: {o['launches_fused']} launches per training step fused, {o['launches_unfused']} as one kernel per op; "
          f"against the CPU: {o.get('check', 'not run')}")
