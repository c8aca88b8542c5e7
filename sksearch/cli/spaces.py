"""`sksearch space show|sample|enumerate`: look at a space before spending compute on it."""

from __future__ import annotations

import argparse

from sksearch.cli.common import check_space_file, positive_int, verb, write_or_print
from sksearch.validation import ConfigError


def _show_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="search space YAML file")
    parser.add_argument("--samples", type=positive_int, default=500, help="samples for a continuous space")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")


@verb("space show", "knobs, size, pass-rate and complexity range", _show_flags)
def cmd_space_show(args: argparse.Namespace) -> int:
    check_space_file(args.file)
    from sksearch.search import load_space

    space = load_space(args.file)
    print(f"space {space.name} ({args.file})")
    print(f"base: archid {space.base.archid}, {space.base.template}, M={space.base.num_branches}")
    print(
        f"recipe: {space.recipe.name}; search: {space.search.algorithm}, objectives "
        + ", ".join(f"{metric}:{mode}" for metric, mode in space.search.objectives)
    )
    print("knobs:")
    for name, form, values in space.describe():
        print(f"  {name:18s} {form:7s} {values}")
    bounds = {k: v for k, v in space.constraints.__dict__.items() if v is not None and k != "match_tolerance"}
    print("constraints: " + (", ".join(f"{k} {v:g}" for k, v in bounds.items()) or "none"))
    if space.finite:
        size = len(space)
        draw = space.enumerate(progress=size > 2000)
        print(f"points: {size}; " + draw.summary())
    else:
        draw = space.sample(args.samples, seed=args.seed)
        print(f"points: continuous; sampled {args.samples} networks: " + draw.summary())
    if not len(draw):  # a sweep refuses such a space; so does show, after showing why
        raise ConfigError("knobs", f"no feasible network in space {space.name}: {draw.summary()}")
    frame = draw.to_frame()
    print(
        f"feasible GMACs {frame['gmacs'].min():.4f} .. {frame['gmacs'].max():.4f}; "
        f"params {frame['params_m'].min():.3f}M .. {frame['params_m'].max():.3f}M"
    )
    return 0


def _sample_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="search space YAML file")
    parser.add_argument("-n", type=positive_int, default=10, help="how many distinct feasible networks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")


@verb("space sample", "draw distinct feasible networks at random", _sample_flags)
def cmd_space_sample(args: argparse.Namespace) -> int:
    check_space_file(args.file)
    from sksearch.search import load_space

    draw = load_space(args.file).sample(args.n, seed=args.seed, progress=args.n > 100)
    _print_draw(draw)
    return 0


def _enumerate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="search space YAML file")
    parser.add_argument("--out", help="write the table to this CSV file")


@verb("space enumerate", "every feasible network of a finite space", _enumerate_flags)
def cmd_space_enumerate(args: argparse.Namespace) -> int:
    check_space_file(args.file)
    from sksearch.search import load_space

    space = load_space(args.file)
    draw = space.enumerate(progress=space.finite and len(space) > 2000)
    if args.out:
        write_or_print(draw.to_frame().to_csv(index=False), args.out)
        print(f"wrote {len(draw)} networks to {args.out}; {draw.summary()}")
    else:
        _print_draw(draw)
    return 0


def _print_draw(draw) -> None:
    frame = draw.to_frame()
    if len(frame):
        print(frame.drop(columns=["params", "macs"]).to_string(index=False))
    print(draw.summary())
