"""PyTorch + timm reference of the GPU check (environment/gpu-check.sh).

The same models, batches, strategies and training step as bench/gpu-bench.ts, on the same device:
timm's vit_small_patch16_224 / vit_base_patch16_224 (pretrained=False; other sizes as timm's
VisionTransformer with the same dimensions), fp32 with TF32 off, then with TF32 on (matmuls and
cuDNN convolutions). The step: logits -> cross-entropy -> backward over the trainable set ->
SGD with momentum 0.9 -> loss read back; the forward reads the logits back. Inputs stay on the
device. Strategies, as ours:
  full     every parameter;
  lora-8   LoRA r=8 on the query and value rows of each block's fused qkv (bench/torch_cpu.py's
           LoraQV; peft on timm's fused qkv would wrap all of q, k and v), and the head;
  block-3  the model with 3 more blocks at our expansion's places (each a copy of the block before
           it with attn.proj and mlp.fc2 zeroed), only those and the head train.
Other settings are PyTorch's defaults (cudnn.benchmark off; timm's fused scaled_dot_product_attention
where its version has it).

Without timm it says so and uses the plain-torch ViT of bench/torch_cpu.py (timm's
VisionTransformer written out: same shapes, explicit attention). Without torch it writes why.

Usage: python3 bench/torch_gpu.py <job.json> <out.json>
  job: printed by `gpu-check.js torch-job` (bench/gpu-bench.ts torchJob)
Environment: GPU_CHECK_DEADLINE (epoch seconds; later rows are skipped), GPU_CHECK_TORCH_DEVICE
(cuda or cpu; default cuda when available).
"""
import json
import os
import sys
import time


def write(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def say(text):
    left = deadline() - time.time()
    print(f"[torch {max(0, left):.0f}s left] {text}", flush=True)


def deadline():
    try:
        d = float(os.environ.get("GPU_CHECK_DEADLINE", ""))
        return d if d > 0 else time.time() + 3600
    except ValueError:
        return time.time() + 3600


def _has(owner, name):
    """hasattr that also survives torch.backends' __getattr__ (it raises AssertionError in older versions)."""
    try:
        getattr(owner, name)
        return True
    except Exception:
        return False


def set_tf32(torch, on):
    """TF32 for matmuls and cuDNN convolutions on or off; returns the API used.

    PyTorch >= 2.9 has per-backend fp32_precision ("ieee" or "tf32") and may refuse a mix of it with
    the older allow_tf32 flags, so only one of the two is used. cuDNN's default is TF32 on: set either way.
    """
    if _has(torch.backends, "fp32_precision"):
        mode = "tf32" if on else "ieee"
        for owner in (torch.backends, torch.backends.cuda.matmul, torch.backends.cudnn, getattr(torch.backends.cudnn, "conv", None)):
            if owner is not None and _has(owner, "fp32_precision"):
                owner.fp32_precision = mode
        return "fp32_precision"
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    return "allow_tf32"


def tf32_settings(torch):
    reads = {
        "matmul.allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
        "cudnn.allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
        "fp32_precision": lambda: torch.backends.fp32_precision,
        "matmul.fp32_precision": lambda: torch.backends.cuda.matmul.fp32_precision,
        "cudnn.conv.fp32_precision": lambda: torch.backends.cudnn.conv.fp32_precision,
        "float32_matmul_precision": lambda: torch.get_float32_matmul_precision(),
    }
    out = {}
    for key, read in reads.items():
        try:
            out[key] = str(read())
        except Exception:
            pass  # not in this version
    return out


def main():
    job_file, out_file = sys.argv[1], sys.argv[2]
    with open(job_file) as f:
        job = json.load(f)
    result = {"available": False}
    try:
        import torch
    except Exception as e:  # no torch: say so, the rest of the check goes on
        result["reason"] = f"torch is not importable with {sys.executable}: {e}"
        write(out_file, result)
        say(result["reason"])
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import timm
        from timm.models.vision_transformer import VisionTransformer

        timm_version = timm.__version__
        source = f"timm {timm_version}"
    except Exception as e:
        timm = None
        timm_version = None
        source = "plain torch (bench/torch_cpu.py: timm's VisionTransformer written out, explicit attention)"
        say(f"timm is not importable ({e}): the PyTorch rows use {source}, NOT timm")
    import torch_cpu

    want = os.environ.get("GPU_CHECK_TORCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(want)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    result.update(
        available=True, torch=torch.__version__, cuda=torch.version.cuda if cuda else None,
        cudnn=torch.backends.cudnn.version() if cuda else None, device=name, timm=timm_version, model_source=source,
        modes=["fp32", "tf32"] if cuda else ["fp32"], rows=[],
    )
    say(f"PyTorch {torch.__version__} on {name}; models from {source}")
    if job.get("size") == "full" and not cuda:
        result["available"] = False
        result["reason"] = "no CUDA device: the full-size rows are GPU rows (GPU_CHECK_SIZE=tiny runs them on the CPU)"
        write(out_file, result)
        say(result["reason"])
        return 0

    def build(c):
        d = c["dims"]
        if timm is not None:
            if c.get("timm") and d["image"] == 224:
                m = timm.create_model(c["timm"], pretrained=False, num_classes=c["classes"], depth=d["depth"])
            else:
                m = VisionTransformer(img_size=d["image"], patch_size=d["patch"], embed_dim=d["width"], depth=d["depth"], num_heads=d["heads"], num_classes=c["classes"])
            qkv_owner = lambda b: b.attn  # noqa: E731
        else:
            m = torch_cpu.ViT(d["image"], d["patch"], d["width"], d["depth"], d["heads"], c["classes"])
            qkv_owner = lambda b: b  # noqa: E731
        for p in m.parameters():
            p.requires_grad_(False)
        s = c["strategy"]
        if s == "full":
            for p in m.parameters():
                p.requires_grad_(True)
        elif s.startswith("lora-"):
            for b in m.blocks:
                owner = qkv_owner(b)
                owner.qkv = torch_cpu.LoraQV(owner.qkv, int(c["lora_rank"]), gated=False)
            for p in m.head.parameters():
                p.requires_grad_(True)
        elif s.startswith("block-"):
            with torch.no_grad():
                for i in c["train_blocks"]:
                    blk = m.blocks[i]
                    blk.load_state_dict(m.blocks[i - 1].state_dict())
                    proj = blk.attn.proj if timm is not None else blk.proj
                    fc2 = blk.mlp.fc2 if timm is not None else blk.fc2
                    for lin in (proj, fc2):
                        lin.weight.zero_()
                        lin.bias.zero_()
                    for p in blk.parameters():
                        p.requires_grad_(True)
            for p in m.head.parameters():
                p.requires_grad_(True)
        else:
            raise ValueError(f"unknown strategy {s}")
        return m.to(device)

    sync = (lambda: torch.cuda.synchronize(device)) if cuda else None
    timed = lambda fn, n, batch: torch_cpu.timed(fn, 0, n, batch, sync)  # noqa: E731

    row_seconds = float(job.get("row_seconds", 10))
    for mode in result["modes"]:
        if cuda:
            api = set_tf32(torch, mode == "tf32")
            result.setdefault("tf32_settings", {})[mode] = dict(tf32_settings(torch), api=api)
        for c in job["cases"]:
            row = {"model": c["model"], "batch": c["batch"], "strategy": c["strategy"], "mode": mode, "macs": c.get("macs")}
            left = deadline() - time.time()
            if left < 5:
                row["skipped"] = f"not enough time left ({left:.0f} s)"
                result["rows"].append(row)
                write(out_file, result)
                continue
            model = opt = x = y = None
            try:
                torch.manual_seed(0)
                model = build(c)
                train = [p for p in model.parameters() if p.requires_grad]
                row["trainable"] = sum(p.numel() for p in train)
                row["trainable_matches_ours"] = row["trainable"] == c.get("trainable")
                d = c["dims"]
                x = torch.randn(c["batch"], 3, d["image"], d["image"], device=device)
                y = torch.randint(0, c["classes"], (c["batch"],), device=device)
                opt = torch.optim.SGD(train, lr=1e-4, momentum=0.9)

                step, forward = torch_cpu.train_step(model, opt, x, y), torch_cpu.forward_pass(model, x)
                if cuda:
                    torch.cuda.reset_peak_memory_stats(device)
                t0 = time.perf_counter()
                step()
                row["first_step_seconds"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                step()
                warm = time.perf_counter() - t0
                n = max(1, min(20, int(0.6 * row_seconds / max(warm, 1e-6)), int((deadline() - time.time() - 3) / max(2 * warm, 1e-6))))
                row["train"] = timed(step, n, c["batch"])
                if cuda:
                    row["peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                forward()
                t0 = time.perf_counter()
                forward()
                fw = time.perf_counter() - t0
                row["forward"] = timed(forward, max(1, min(20, int(0.3 * row_seconds / max(fw, 1e-6)))), c["batch"])
            except Exception as e:  # out of memory and the like: the row says so, the others go on
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            finally:
                del model, opt, x, y
                if cuda:
                    torch.cuda.empty_cache()
            result["rows"].append(row)
            write(out_file, result)
            if "train" in row:
                say(f"{mode} {c['model']} b{c['batch']} {c['strategy']}: train {row['train']['imgPerSec']:.1f} img/s, forward {row['forward']['imgPerSec']:.1f} img/s"
                    + (f", peak {row['peak_mib']:.0f} MiB" if "peak_mib" in row else "") + ("" if row["trainable_matches_ours"] else f", trainable {row['trainable']} != ours {c.get('trainable')}"))
            else:
                say(f"{mode} {c['model']} b{c['batch']} {c['strategy']}: {row.get('error') or row.get('skipped')}")
    write(out_file, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
