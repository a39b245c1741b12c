"""PyTorch's side of bench/gpu/run.sh: the seed ConvNet and one bert-base layer on the same GPU, eager and torch.compile.

Same work as the Compiled.Nets device twin measures: a training step (the batch copied in, forward, cross-entropy,
backward, AdamW, the loss copied out) at batch 64, and inference (input in, logits out) at batch 1 and 64, median
milliseconds after a warm-up; for the BERT layer (embeddings + LayerNorm, one encoder layer as Hugging Face's BertLayer
with scaled_dot_product_attention and the padding mask, a classifier on [CLS]) the same at batch 16 × 128 tokens.
float32 throughout: TF32 is switched off for convolutions and matmuls, as the device twin computes in float32; with
--tf32 it is switched on, as the twin's cuBLAS GEMMs are with MatmulPrecision.High (the bench's --tf32).
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNet(nn.Module):
    def __init__(self, channels, size):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, padding=1)
        self.conv2 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc1 = nn.Linear(128 * (size // 4) ** 2, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class BertLayer(nn.Module):
    def __init__(self, vocab=1000, hidden=768, heads=12, intermediate=3072, positions=512):
        super().__init__()
        self.heads = heads
        self.words = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(positions, hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.classifier = nn.Linear(hidden, 2)

    def forward(self, ids, mask):
        b, t = ids.shape
        x = self.embedding_norm(self.words(ids) + self.positions.weight[:t])

        def heads(p):
            return p.view(b, t, self.heads, -1).transpose(1, 2)

        keep = mask[:, None, None, :].bool()  # padded keys get no weight
        ctx = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(x)), heads(self.value(x)), attn_mask=keep)
        a = self.attention_norm(self.attention_out(ctx.transpose(1, 2).reshape(b, t, -1)) + x)
        h = self.output_norm(self.output(F.gelu(self.intermediate(a))) + a)
        return self.classifier(h[:, 0])


def memory_in_use():
    """Device memory in use (the driver's total less its free memory, as nvidia-smi counts a process's), as ours is
    measured: its growth from before a model is made to after its timed training steps."""
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    return total - free


def median_ms(reps, fn):
    for _ in range(max(3, reps // 10)):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench(name, channels, size, compiled, reps):
    dev = torch.device("cuda")
    torch.manual_seed(1)
    torch.cuda.empty_cache()  # what earlier models left in the caching allocator
    before = memory_in_use()
    model = ConvNet(channels, size).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    run = torch.compile(model) if compiled else model
    x64 = torch.rand(64, channels, size, size).pin_memory()
    y64 = torch.randint(0, 10, (64,)).pin_memory()
    x1 = torch.rand(1, channels, size, size).pin_memory()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(run(x64.to(dev, non_blocking=True)), y64.to(dev, non_blocking=True))
        loss.backward()
        opt.step()
        return loss.item()

    def infer(x):
        with torch.no_grad():
            return run(x.to(dev, non_blocking=True)).cpu()

    train = median_ms(reps, step)
    memory = (memory_in_use() - before) / 2**20
    return {
        "model": name,
        "variant": "torch.compile" if compiled else "eager",
        "train_step_b64_ms": train,
        "train_memory_mb": memory,
        "infer_b64_ms": median_ms(reps, lambda: infer(x64)),
        "infer_b1_ms": median_ms(reps, lambda: infer(x1)),
    }


def bench_bert(compiled, reps, batch=16, seq=128):
    dev = torch.device("cuda")
    torch.manual_seed(1)
    torch.cuda.empty_cache()
    before = memory_in_use()
    model = BertLayer().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    run = torch.compile(model) if compiled else model
    ids = torch.randint(0, 1000, (batch, seq)).pin_memory()
    mask = torch.ones(batch, seq, dtype=torch.long).pin_memory()
    labels = torch.randint(0, 2, (batch,)).pin_memory()

    def step():
        opt.zero_grad(set_to_none=True)
        logits = run(ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True))
        loss = F.cross_entropy(logits, labels.to(dev, non_blocking=True))
        loss.backward()
        opt.step()
        return loss.item()

    def infer():
        with torch.no_grad():
            return run(ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True)).cpu()

    train = median_ms(reps, step)
    memory = (memory_in_use() - before) / 2**20
    return {
        "model": "bert_layer",
        "variant": "torch.compile" if compiled else "eager",
        "train_step_b16x128_ms": train,
        "train_memory_mb": memory,
        "infer_b16x128_ms": median_ms(reps, infer),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--json", default="torch.json")
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0), "tf32": args.tf32}
    results = []

    def record(r):
        # Written after each result: run.sh may stop this script (torch.compile can take minutes), and what was measured
        # by then still reaches the ratios.
        print(r, flush=True)
        results.append(r)
        with open(args.json + ".tmp", "w") as f:
            json.dump({"info": info, "results": results}, f, indent=2)
        os.replace(args.json + ".tmp", args.json)  # a stop mid-write leaves the previous file whole

    # Every eager measurement first, then torch.compile's, which may fail (it needs a working Triton) or run long.
    for compiled in (False, True):
        for name, channels, size in (("convnet_1x28x28", 1, 28), ("convnet_3x32x32", 3, 32)):
            try:
                record(bench(name, channels, size, compiled, args.reps))
            except Exception as e:
                record({"model": name, "variant": "torch.compile" if compiled else "eager", "error": repr(e)[:300]})
        try:
            record(bench_bert(compiled, args.reps))
        except Exception as e:
            record({"model": "bert_layer", "variant": "torch.compile" if compiled else "eager", "error": repr(e)[:300]})


if __name__ == "__main__":
    main()
