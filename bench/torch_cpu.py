"""PyTorch reference for `study bench --cpu`: the same ViT, strategies and training step, on CPU.

timm is not installable here, so this is timm's VisionTransformer written out in plain torch:
Conv2d patch embedding, CLS token, learned positions, pre-norm blocks (LayerNorm eps 1e-6, fused
qkv with bias, softmax attention, exact GELU MLP), final norm, linear head on the CLS token.
The step: logits -> cross-entropy -> backward over the trainable set -> Adam -> loss read back.

Usage: python3 bench/torch_cpu.py '<json job>'   (job = {"threads": n, "cases": [...]} as bench/cpu.ts)
Prints one JSON line per case.
       python3 bench/torch_cpu.py --info
Prints {"version": ..., "blas": {...}}: which BLAS this PyTorch's matmuls run on (see blas()).
"""
import json
import math
import os
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "vit-tiny-16": dict(image=224, patch=16, width=192, depth=12, heads=3),
    "vit-small-16": dict(image=224, patch=16, width=384, depth=12, heads=6),
    "vit-base-16": dict(image=224, patch=16, width=768, depth=12, heads=12),
    "vit-cifar-micro": dict(image=32, patch=4, width=64, depth=4, heads=2),
    "vit-cifar-tiny": dict(image=32, patch=4, width=128, depth=6, heads=4),
    "vit-cifar-small": dict(image=32, patch=4, width=192, depth=8, heads=3),
}


class LoraQV(nn.Module):
    """LoRA on the query and value rows of a fused qkv Linear (peft on timm's qkv), optional gate."""

    def __init__(self, qkv: nn.Linear, rank: int, gated: bool):
        super().__init__()
        self.qkv, self.d = qkv, qkv.in_features
        self.A = nn.ParameterList([nn.Parameter(torch.empty(rank, self.d).uniform_(-1 / math.sqrt(self.d), 1 / math.sqrt(self.d))) for _ in range(2)])
        self.B = nn.ParameterList([nn.Parameter(torch.zeros(self.d, rank)) for _ in range(2)])
        self.score = nn.Parameter(torch.full((2,), 0.15)) if gated else None

    def forward(self, x):
        y = self.qkv(x)
        q, k, v = y.split(self.d, dim=-1)
        dq = x @ self.A[0].t() @ self.B[0].t()
        dv = x @ self.A[1].t() @ self.B[1].t()
        if self.score is not None:  # straight-through gate, as selective LoRA
            hard = (self.score > 0.1).float()
            gate = hard + self.score - self.score.detach()
            dq, dv = dq * gate[0], dv * gate[1]
        return torch.cat([q + dq, k, v + dv], dim=-1)


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def attn(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        a = ((q * hd**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, T, D))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, image, patch, width, depth, heads, classes):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, width, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, width) * 0.02)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def build(case):
    p = dict(PRESETS[case["model"]])
    s = case["strategy"]
    if s.startswith("block-expansion-"):
        p["depth"] += int(s.rsplit("-", 1)[1])
    m = ViT(classes=case["classes"], **p)
    for q in m.parameters():
        q.requires_grad_(s == "full")
    head = list(m.head.parameters())
    if s == "full":
        return m, list(m.parameters())
    if s.startswith("top-"):
        k = int(s.split("-")[1])
        train = [q for b in m.blocks[-k:] for q in b.parameters()] + head
    elif s == "linear":
        train = head
    elif s.startswith("lora-") or s.startswith("selective-lora-"):
        r = int(s.rsplit("-", 1)[1])
        extra = []
        for b in m.blocks:
            b.qkv = LoraQV(b.qkv, r, gated=s.startswith("selective"))
            extra += [q for n, q in b.qkv.named_parameters() if not n.startswith("qkv.")]
        train = extra + head
    elif s.startswith("block-expansion-"):
        # The inserted block after the last group (split = depth for p = 1), as the papers' p=1.
        train = list(m.blocks[-1].parameters()) + head
    else:
        raise ValueError(f"unknown strategy {s}")
    for q in train:
        q.requires_grad_(True)
    return m, train


def train_step(model, opt, x, y):
    """The training step both references time (this file and bench/torch_gpu.py): logits ->
    cross-entropy -> backward over the trainable set -> the optimizer's update -> loss read back."""

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    return step


def forward_pass(model, x):
    """The timed forward: logits without autograd, read back to the host."""

    def forward():
        with torch.no_grad():
            model(x).cpu()

    return forward


def timed(fn, warmup, steps, batch, sync=None):
    """Median seconds of `steps` calls after `warmup` untimed ones; `sync` (e.g. cuda.synchronize)
    runs before each timed call so that no earlier queued work is counted."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(steps):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    med = statistics.median(samples)
    return {"median": med, "imgPerSec": batch / med, "samples": samples}


def run(case):
    torch.manual_seed(0)
    model, train = build(case)
    p = PRESETS[case["model"]]
    x = torch.randn(case["batch"], 3, p["image"], p["image"])
    y = torch.randint(0, case["classes"], (case["batch"],))
    opt = torch.optim.Adam(train, lr=1e-4)
    step, forward = train_step(model, opt, x, y), forward_pass(model, x)

    out = dict(case, trainable=sum(q.numel() for q in train))
    if case.get("forward"):
        out["forwardTiming"] = timed(forward, max(1, case["warmup"]), case["steps"], case["batch"])
    out["trainTiming"] = timed(step, case["warmup"], case["steps"], case["batch"])
    return out


def blas():
    """The BLAS behind PyTorch's CPU matmuls (nn.Linear is a BLAS gemm).

    pip wheels link MKL or OpenBLAS in (BLAS_INFO says which). Debian's python3-torch is built with
    BLAS_INFO=generic and takes whatever libblas.so.3 the alternatives system points at; with only
    libblas3 installed that is the netlib reference BLAS, unoptimised, and PyTorch then runs several
    times below this machine's speed, so every ratio against it would flatter ours.
    """
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    out = {"info": m.group(1) if m else "unknown", "libraries": [], "reference": False, "gemmGflops": gemm_gflops()}
    if out["info"] != "generic":
        return out
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return out
    out["libraries"] = sorted(p for p in paths if re.search(r"blas|blis|atlas|mkl", os.path.basename(p)))
    # The file mapped as libblas.so.3 provides sgemm_ (an OpenBLAS loaded only as liblapack.so.3 does not).
    out["reference"] = any(re.search(r"/blas/libblas\.so", p) for p in out["libraries"])
    return out


def gemm_gflops(n=512, reps=3):
    """Single-thread float32 GEMM speed, n x n (0.8 GFLOP in all): tens of GFLOP/s on an optimised
    BLAS, a few on the reference one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    torch.set_num_threads(threads)
    return round(2 * n**3 * reps / (time.perf_counter() - t0) / 1e9, 1)


def main():
    if sys.argv[1:] == ["--info"]:
        print(json.dumps({"version": torch.__version__, "blas": blas()}))
        return
    job = json.loads(sys.argv[1])
    threads = int(job.get("threads") or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    head = {"backend": "torch", "threads": threads, "detail": f"PyTorch {torch.__version__}, {threads} threads"}
    for case in job["cases"]:
        try:
            row = run(case)
        except Exception as e:  # report and go on, as bench/cpu.ts does
            row = dict(case, trainable=0, error=str(e))
        print(json.dumps(dict(head, **row)), flush=True)


if __name__ == "__main__":
    main()
