# The loader bench's peer: torchvision's input pipeline on a folder of images, as a PyTorch user
# writes it (ImageFolder + Resize + PILToTensor in a DataLoader with worker processes, shuffled,
# batches stacked), timed per epoch. One JSON argument:
#   {"root": DIR, "batch": 64, "size": 256, "workers": 16, "warmup": 1, "reps": 1}
# Prints one JSON line: {"runs_ms": [...], "images": N, "workers": W, "torch": ..., "torchvision": ...},
# or {"error": "..."}.
import json
import sys
import time


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
    for epoch in range(spec["warmup"] + spec["reps"]):
        t0 = time.perf_counter()
        n = 0
        for images, _ in loader:
            n += images.shape[0]
        if n != len(ds):
            raise RuntimeError(f"an epoch read {n} images, not {len(ds)}")
        if epoch >= spec["warmup"]:
            runs.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"runs_ms": runs, "images": len(ds), "workers": workers, "torch": torch.__version__, "torchvision": torchvision.__version__}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the bench records the reason and goes on
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
