"""The packed data path: an image folder written once into a few large files of JPEG bytes (each
image re-encoded with its longer side at most `max_side`), read back by index by the loaders'
workers from a memory map.

Why a memory-mapped array rather than WebDataset's tar shards: a trial reads by index, so an
epoch's order is the same (seed, epoch) shuffle as any other dataset's, split per rank by the same
samplers, and nothing depends on a shuffle buffer; repeated epochs are served by the page cache; and
it needs nothing beyond numpy. What makes it fast is what it leaves out at training time: no file
opened per image, and smaller JPEGs to decode.

`OUT/<split>/` (for each of the folder's `train/` and `val/`, or the folder itself as `train`):
- `shard-NNNNN.bin`: JPEG bytes end to end; `shard-NNNNN.json`: each image's offset, length and
  label, and the images skipped as unreadable, with why. A shard's JSON is written after its bytes,
  so a shard with its JSON is whole: an interrupted preparation, run again, keeps those;
- `pack.json`: the classes, the settings, the images and shards (written last).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from sksearch.files import atomic_write, atomic_write_text
from sksearch.validation import ConfigError

SHARD_IMAGES = 1024
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
PACK = "pack.json"
QUALITY = 90


@dataclass(frozen=True)
class Source:
    """The images of one split of an image folder, in ImageFolder's order: class folders sorted,
    files sorted within each."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[tuple[str, int], ...]  # (path relative to root, label)

    @classmethod
    def scan(cls, root: Path) -> Source:
        classes = tuple(sorted(entry.name for entry in os.scandir(root) if entry.is_dir()))
        if not classes:
            raise ConfigError(str(root), "has no class folders (expected <root>/<class>/<image>)")
        files = []
        for label, name in enumerate(classes):
            for dirpath, _, names in sorted(os.walk(root / name)):
                for file in sorted(names):
                    if file.lower().endswith(EXTENSIONS):
                        files.append((os.path.relpath(os.path.join(dirpath, file), root), label))
        return cls(root, classes, tuple(files))


def splits_of(folder: Path) -> dict[str, Path]:
    """The splits to pack: an ImageNet layout's train/ and val/, else the folder itself as train."""
    if not folder.is_dir():
        raise ConfigError(str(folder), "is not a folder")
    found = {name: folder / name for name in ("train", "val") if (folder / name).is_dir()}
    return found or {"train": folder}


def prepare(folder: str | Path, out: str | Path, max_side: int = 256, workers: int | None = None,
            progress: Callable[[int], None] | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Pack every split of `folder` into `out`; returns each split's pack.json. Shards already
    written by an interrupted run with the same settings are kept; other settings are refused."""
    folder, out = Path(folder), Path(out)
    if max_side < 16:
        raise ConfigError("--max-side", f"must be at least 16 px, got {max_side}")
    sources = {split: Source.scan(root) for split, root in splits_of(folder).items()}
    packs = {}
    for split, source in sources.items():
        packs[split] = _prepare_split(source, out / split, max_side, workers, progress)
    return packs


def _prepare_split(source: Source, out: Path, max_side: int, workers: int | None, progress) -> dict[str, Any]:
    settings = {"source": str(source.root.resolve()), "images_found": len(source.files), "max_side": max_side,
                "quality": QUALITY, "shard_images": SHARD_IMAGES}  # fmt: skip
    _claim(out, settings)
    starts = range(0, len(source.files), SHARD_IMAGES)
    todo = [index for index, _ in enumerate(starts) if not (out / f"shard-{index:05d}.json").exists()]
    if progress:
        progress(sum(min(SHARD_IMAGES, len(source.files) - start) for index, start in enumerate(starts)
                     if index not in todo))  # fmt: skip
    jobs = [(source.root, source.files[index * SHARD_IMAGES : (index + 1) * SHARD_IMAGES], out, index, max_side)
            for index in todo]  # fmt: skip
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for count in pool.map(_write_shard, jobs):
            if progress:
                progress(count)
    names = [f"shard-{index:05d}" for index in range(len(starts))]
    shards = [json.loads((out / f"{name}.json").read_text()) for name in names]
    pack = {**settings, "classes": list(source.classes), "shards": names,
            "images": sum(len(shard["entries"]) for shard in shards),
            "skipped": [item for shard in shards for item in shard["skipped"]]}  # fmt: skip
    atomic_write_text(out / PACK, json.dumps(pack, indent=1))
    return pack


def _claim(out: Path, settings: dict[str, Any]) -> None:
    """Mark `out` as this preparation's (settings.json), or refuse one made with other settings."""
    marker = out / "settings.json"
    if marker.exists():
        before = json.loads(marker.read_text())
        if before != settings:
            changed = ", ".join(f"{key} {before.get(key)} -> {value}" for key, value in settings.items()
                                if before.get(key) != value)  # fmt: skip
            raise ConfigError(str(out), f"holds a preparation with other settings ({changed}): give another OUT or "
                              "delete it")  # fmt: skip
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps(settings, indent=1))


def _write_shard(job: tuple[Path, tuple[tuple[str, int], ...], Path, int, int]) -> int:
    root, files, out, index, max_side = job
    blob, entries, skipped = bytearray(), [], []
    for path, label in files:
        try:
            encoded = _reencode(root / path, max_side)
        except (OSError, ValueError, SyntaxError) as error:  # PIL's ways of saying "not an image"
            skipped.append(f"{path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            continue
        entries.append([len(blob), len(encoded), label])
        blob += encoded
    atomic_write(out / f"shard-{index:05d}.bin", lambda temporary: Path(temporary).write_bytes(bytes(blob)))
    atomic_write_text(out / f"shard-{index:05d}.json", json.dumps({"entries": entries, "skipped": skipped}))
    return len(files)


def _reencode(path: Path, max_side: int) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale where that still covers max_side
        picture = image.convert("RGB")
    picture.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=None)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


class PackedImages(Dataset):
    """One prepared split: item i is (image, label), the image a uint8 CHW tensor decoded by
    TorchCodec's libjpeg-turbo decoder (no PIL image made; torchvision's own decoder is deprecated
    in its favour), or transform(image) with a `transform` (torchvision.transforms.v2, which works
    on such tensors)."""

    def __init__(self, folder: str | Path, transform: Callable | None = None):
        self.folder = Path(folder)
        try:
            pack = json.loads((self.folder / PACK).read_text())
        except (OSError, ValueError):
            raise ConfigError("data_root", f"{self.folder} is not a prepared split (no readable {PACK}: run "
                              "`sksearch prepare IMAGEFOLDER OUT` and point data_root at OUT)") from None  # fmt: skip
        self.classes = pack["classes"]
        self.shards = pack["shards"]
        tables = [self._entries(name) for name in self.shards]
        self.entries = np.concatenate(tables) if tables else np.zeros((0, 3), dtype=np.int64)
        self.shard_of = np.concatenate([np.full(len(table), index) for index, table in enumerate(tables)] or [[]])
        self.targets = self.entries[:, 2].tolist()
        self.transform = transform
        self._maps: dict[int, np.memmap] = {}  # opened in each worker process on first use

    def _entries(self, shard: str) -> np.ndarray:
        entries = json.loads((self.folder / f"{shard}.json").read_text())["entries"]
        return np.asarray(entries, dtype=np.int64).reshape(-1, 3)  # offset, length, label

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict:  # a worker opens its own maps
        return {**self.__dict__, "_maps": {}}

    def jpeg(self, index: int) -> bytes:
        shard = int(self.shard_of[index])
        if shard not in self._maps:
            self._maps[shard] = np.memmap(self.folder / f"{self.shards[shard]}.bin", dtype=np.uint8, mode="r")
        offset, length, _ = self.entries[index]
        return self._maps[shard][offset : offset + length].tobytes()

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from torchcodec.decoders import decode_jpeg  # libjpeg-turbo, straight to a tensor

        image = decode_jpeg(self.jpeg(index), mode="RGB")
        return (self.transform(image) if self.transform else image), int(self.entries[index, 2])
