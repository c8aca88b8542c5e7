"""The `train` verb: one network under a recipe, with a progress bar and a summary; and `prepare`,
which packs an image folder for the fast data path (sksearch.packed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sksearch.cli.common import (
    add_set_flag,
    check_exists,
    out_folder,
    parse_settings,
    positive_int,
    spec_argument,
    verb,
)
from sksearch.validation import ConfigError


def _train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="preset name or spec YAML file")
    parser.add_argument("--recipe", default="smoke", help="recipe preset (smoke, proxy, cifar, imagenet, ...)")
    add_set_flag(parser)
    parser.add_argument("--out", type=out_folder, help="output folder (default results/train/<name>)")
    parser.add_argument("--restart", action="store_true", help="ignore a checkpoint already in --out")


@verb("train", "train one preset or spec file under a recipe", _train_flags)
def cmd_train(args: argparse.Namespace) -> int:
    label, spec = spec_argument(args.model)  # a bad name or file is refused before torch is imported
    from sksearch.recipes import recipe_from
    from sksearch.runfiles import PLAN

    try:
        recipe = recipe_from({"preset": args.recipe, **parse_settings(args.set)})
    except ConfigError as error:
        raise error.within("recipe") from None
    out = Path(args.out or f"results/train/{label}")
    if (out / PLAN).exists():  # its history.parquet is the sweep's
        raise ConfigError("--out", f"{out} is a sweep's folder; train into a folder of its own")
    from sksearch.train import train, write_summary

    print(f"training {label} (archid {spec.archid}) under recipe {recipe.name} -> {out}")
    result = train(spec, recipe, out, report=_print_epoch, resume=not args.restart, progress=True)
    write_summary(result, spec, recipe, out)
    final = result.final
    print(
        f"{result.status}{': ' + result.reason if result.reason else ''}; {result.epochs_run} epochs in "
        f"{result.wall_time:.1f}s; params {result.params / 1e6:.3f}M, GMACs {result.macs / 1e9:.4f} (as trained)"
    )
    if final:
        best = result.best
        print(
            f"final top-1 error {final['top1_err']:.2f}%, top-5 {final['top5_err']:.2f}%; "
            f"best top-1 {best['top1_err']:.2f}% at epoch {best['epoch']}; files in {out}"
        )
    return 0 if result.status == "completed" else 1


def _print_epoch(metrics: dict, checkpoint: object) -> None:
    print(
        f"epoch {metrics['epoch']:3d}  loss {metrics['train_loss']:.4f}  top-1 err {metrics['top1_err']:6.2f}%  "
        f"top-5 err {metrics['top5_err']:6.2f}%  {metrics['epoch_time']:.1f}s  {metrics['images_per_s']:.0f} img/s"
    )


def _prepare_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="an image folder: <folder>/{train,val}/<class>/<image>, or <folder>/<class>/...")
    parser.add_argument("out", help="where the packed splits go (a recipe's data_root)")
    parser.add_argument("--max-side", type=positive_int, default=256, help="longer side of the stored JPEGs, px")
    parser.add_argument("--workers", type=positive_int, help="processes encoding images (default: every core)")


@verb("prepare", "pack an image folder into memory-mapped JPEG shards for the fast data path", _prepare_flags)
def cmd_prepare(args: argparse.Namespace) -> int:
    check_exists(args.folder)  # before torch is imported
    from tqdm import tqdm

    from sksearch.packed import Source, prepare, splits_of

    total = sum(len(Source.scan(root).files) for root in splits_of(Path(args.folder)).values())
    with tqdm(total=total, desc="packing", unit="image") as bar:
        packs = prepare(args.folder, args.out, args.max_side, args.workers, progress=bar.update)
    for split, pack in packs.items():
        size = sum((Path(args.out) / split / f"{shard}.bin").stat().st_size for shard in pack["shards"])
        print(f"{split}: {pack['images']:,} images of {len(pack['classes'])} classes in {len(pack['shards'])} shards "
              f"({size / 2**20:,.1f} MiB), {len(pack['skipped'])} skipped as unreadable")  # fmt: skip
        for item in pack["skipped"][:5]:
            print(f"  skipped {item}")
    print(f"data_root: {args.out} (dataset: packed, e.g. --recipe imagenet-fast --set data_root={args.out})")
    return 0
