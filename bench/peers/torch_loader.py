# The loader bench's peer: torchvision's input pipeline on a folder of images, as a PyTorch user
# writes it (ImageFolder + Resize + PILToTensor in a DataLoader with worker processes, shuffled,
# batches stacked), timed per epoch. One JSON argument:
#   {"root": DIR, "batch": 64, "size": 256, "workers": 16, "warmup": 1, "reps": 1}
# Prints one JSON line: {"runs_ms": [...], "cpu_ms": C, "images": N, "workers": W, "torch": ...,
# "torchvision": ...}, or {"error": "..."}. cpu_ms: CPU time of the timed epochs, this process and its
# worker processes together (from /proc; null where there is none).
import json
import os
import sys
import time


def cpu_ms(pids):
    """User + system CPU time of the processes `pids` so far, in ms (None without /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def main():
    spec = json.loads(sys.argv[1])
    import torch
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(spec["root"], transforms.Compose([transforms.Resize(spec["size"]), transforms.PILToTensor()]))
    workers = spec["workers"]
    loader = DataLoader(ds, batch_size=spec["batch"], shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    runs = []
    cpu_start = None
    for epoch in range(spec["warmup"] + spec["reps"]):
        if epoch == spec["warmup"]:
            # Persistent workers: the iterator of the warm-up epochs holds the worker processes.
            pids = [os.getpid()] + [w.pid for w in getattr(loader._iterator, "_workers", [])]
            cpu_start = cpu_ms(pids)
        t0 = time.perf_counter()
        n = 0
        for images, _ in loader:
            n += images.shape[0]
        if n != len(ds):
            raise RuntimeError(f"an epoch read {n} images, not {len(ds)}")
        if epoch >= spec["warmup"]:
            runs.append((time.perf_counter() - t0) * 1000)
    cpu_end = cpu_ms(pids) if cpu_start is not None else None
    cpu = cpu_end - cpu_start if cpu_end is not None else None
    print(json.dumps({"runs_ms": runs, "cpu_ms": cpu, "images": len(ds), "workers": workers, "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the bench records the reason and goes on
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
