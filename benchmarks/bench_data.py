"""Images per second per core of the training data path: ImageFolder + PIL (the `imagenet` recipe's
pipeline) against the packed path (`sksearch prepare`, the `imagenet-fast` recipe's), at the same
output size, with 1 and 2 loader workers; and from these, the cores a node needs per GPU at the
published anchors' rates.

    python benchmarks/bench_data.py [--images 20000] [--root /tmp/sksearch-bench-data] [--measure 3000]

It first synthesizes an ImageFolder of ImageNet-like JPEGs (about 400x350, quality 90: smooth
backgrounds, shapes and grain, 100 classes; kept in --root for the next run) and packs it (longer
side 256). Each figure is the loader's rate over --measure training images after one warm-up batch,
in the order the recipe's sampler gives; images/s per core is that over the workers. Both paths run
through sksearch.data.make_loaders, as a trial's would. The packed path hands uint8 batches to the
device, which normalises them (on a GPU, a negligible cost); the folder path normalises on the CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# published training rates per GPU (images/s): what a node's loaders must keep up with
ANCHORS = {"NVIDIA ResNet-50, A100, AMP, 224 px": (2470, 224), "FFCV ResNet-50, A100, 160-192 px": (3000, 160)}
CLASSES = 100


def synthesize(root: Path, images: int, seed: int = 0) -> None:
    """train/ with `images` JPEGs and val/ with a tenth of that, in CLASSES folders (kept if there)."""
    for split, count in (("train", images), ("val", max(CLASSES, images // 10))):
        folder = root / split
        if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) >= count:
            continue
        jobs = [(folder, index, seed + index + (0 if split == "train" else 10**7)) for index in range(count)]
        with ProcessPoolExecutor() as pool:
            list(pool.map(_draw, jobs, chunksize=64))


def _draw(job: tuple[Path, int, int]) -> None:
    from PIL import Image, ImageDraw

    folder, index, seed = job
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(360, 440)), int(rng.integers(310, 390))
    ys, xs = np.mgrid[0:height, 0:width] / max(width, height)
    colours = rng.integers(0, 256, (3, 3))
    base = (
        colours[0] + np.outer(ys.ravel(), colours[1] - colours[0]) + np.outer(xs.ravel(), colours[2] - colours[0]) / 2
    )
    image = Image.fromarray(np.clip(base, 0, 255).reshape(height, width, 3).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        box = (x0, y0, x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200)))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    grain = rng.normal(0, 6, (height, width, 3))
    pixels = np.clip(np.asarray(image, float) + grain, 0, 255).astype(np.uint8)
    target = folder / f"class{index % CLASSES:03d}"
    target.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(target / f"{index:06d}.jpg", quality=90)


def rate(recipe, size: int, workers: int, images: int) -> float:
    """Training images/s of the recipe's loader at `size` with `workers`."""
    from sksearch.data import make_loaders

    loaders = make_loaders(recipe.replace(image_size=size, workers=workers, batch_size=64, train_samples=None))
    batches = iter(loaders.train)
    next(batches)  # workers started, first batch out
    seen, started = 0, time.perf_counter()
    for batch, _ in batches:
        seen += len(batch)
        if seen >= images:
            break
    return seen / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="JPEGs in the synthesized train split")
    parser.add_argument("--root", default="/tmp/sksearch-bench-data", help="where the images and packs are kept")
    parser.add_argument("--measure", type=int, default=3000, help="images timed per figure")
    args = parser.parse_args()
    from sksearch.packed import prepare
    from sksearch.recipes import RECIPES

    root = Path(args.root)
    started = time.perf_counter()
    synthesize(root / "folder", args.images)
    print(f"image folder: {args.images:,} train JPEGs in {root / 'folder'} ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    prepare(root / "folder", root / "packed", max_side=256)
    size_folder = sum(path.stat().st_size for path in (root / "folder" / "train").rglob("*.jpg"))
    size_packed = sum(path.stat().st_size for path in (root / "packed" / "train").glob("*.bin"))
    print(f"packed (longer side 256) in {time.perf_counter() - started:.0f} s: {size_folder / 2**20:,.0f} MiB of "
          f"JPEGs -> {size_packed / 2**20:,.0f} MiB")  # fmt: skip
    paths = {
        "ImageFolder + PIL": RECIPES["imagenet"].replace(data_root=str(root / "folder")),
        "packed": RECIPES["imagenet-fast"].replace(data_root=str(root / "packed"), start_image_size=None),
    }
    print(f"{'path':<20}{'px':>5}{'workers':>9}{'images/s':>10}{'per core':>10}{'x folder':>10}")
    per_core = {}
    for size in (160, 224):
        for workers in (1, 2):
            for name, recipe in paths.items():
                measured = rate(recipe, size, workers, args.measure)
                per_core[name, size, workers] = measured / workers
                ratio = per_core[name, size, workers] / per_core["ImageFolder + PIL", size, workers]
                print(f"{name:<20}{size:>5}{workers:>9}{measured:>10.0f}{measured / workers:>10.0f}{ratio:>10.2f}")
    print(f"cores per GPU at the anchors' rates (1-worker rate per core; {os.cpu_count()} cores here, load "
          f"{os.getloadavg()[0]:.1f}):")  # fmt: skip
    for anchor, (speed, size) in ANCHORS.items():
        cores = {name: speed / per_core[name, size, 1] for name in paths}
        print(f"  {anchor}: {speed:,} images/s needs {cores['ImageFolder + PIL']:.1f} cores of ImageFolder + PIL, "
              f"{cores['packed']:.1f} of packed")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
