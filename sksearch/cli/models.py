"""Verbs about networks: presets, spec, count, paper, latency."""

from __future__ import annotations

import argparse
import json
import sys

from sksearch.cli.common import is_space_file, out_folder, positive_int, spec_argument, verb, write_or_print
from sksearch.spec import NetSpec


@verb("presets", "list the named models with their params and GMACs")
def cmd_presets(args: argparse.Namespace) -> int:
    from sksearch.complexity import count
    from sksearch.presets import PRESETS

    print(f"{'name':32s} {'params (M)':>10s} {'GMACs':>8s}  description")
    for name, entry in PRESETS.items():
        complexity = count(name)
        print(f"{name:32s} {complexity.params_m:10.3f} {complexity.gmacs:8.3f}  {entry.description}")
    return 0


def _spec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="preset name or spec YAML file")
    parser.add_argument("--out", help="write the YAML to this file instead of printing it")


@verb("spec", "print (or write) the spec YAML of a preset or spec file", _spec_flags)
def cmd_spec(args: argparse.Namespace) -> int:
    _, spec = spec_argument(args.model)
    write_or_print(spec.to_yaml(), args.out)
    if args.out:
        print(f"wrote {args.out} (archid {spec.archid})")
    return 0


def _count_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="preset name or spec YAML file")
    parser.add_argument(
        "--method", choices=("analytic", "fvcore", "both"), default="analytic", help="which counter (both: and compare)"
    )
    parser.add_argument("--input-size", type=positive_int, help="input resolution (default: the spec's)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


@verb("count", "count params and MACs of a preset or spec file", _count_flags)
def cmd_count(args: argparse.Namespace) -> int:
    label, spec = spec_argument(args.model)  # a bad name or file is refused before torch is imported
    from sksearch.complexity import count

    methods = ("analytic", "fvcore") if args.method == "both" else (args.method,)
    results = {method: count(spec, method, args.input_size) for method in methods}
    mismatch = len(results) == 2 and (
        results["analytic"].params != results["fvcore"].params or results["analytic"].macs != results["fvcore"].macs
    )
    if args.json:
        payload = {"model": label, "archid": spec.archid, **{m: c.to_dict() for m, c in results.items()}}
        print(json.dumps(payload, indent=2))
    else:
        print(_format_count(label, spec, results))
    if mismatch:
        sys.stderr.write("sksearch count: error: the analytic and fvcore counts disagree (please report)\n")
        return 1
    return 0


def _format_count(label: str, spec: NetSpec, results: dict) -> str:
    first = next(iter(results.values()))
    lines = [
        f"{label}  archid {spec.archid}  template {spec.template}  input {first.input_size}x{first.input_size}  "
        f"M={spec.num_branches}",
        f"{'method':9s} {'params':>12s} {'GMACs':>9s} {'fvcore GFLOPs':>14s} {'elementwise GFLOPs':>19s}",
    ]
    for method, complexity in results.items():
        fvcore = "-" if complexity.fvcore_flops is None else f"{complexity.fvcore_flops / 1e9:.4f}"
        extra = "-" if complexity.elementwise_flops is None else f"{complexity.elementwise_flops / 1e9:.4f}"
        lines.append(f"{method:9s} {complexity.params:>12,d} {complexity.gmacs:9.4f} {fvcore:>14s} {extra:>19s}")
    lines.append(f"{'part':9s} {'params (M)':>12s} {'GMACs':>9s} {'activations (M)':>16s}")
    for part in first.parts:
        lines.append(f"{part.name:9s} {part.params / 1e6:12.3f} {part.macs / 1e9:9.4f} {part.activations / 1e6:16.3f}")
    lines.append("params: learnable parameters; GMACs: conv + linear multiply-accumulates (the paper's GFLOPs)")
    return "\n".join(lines)


def _paper_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=out_folder, default="results/paper", help="folder for complexity.csv and .md")


@verb("paper", "regenerate the paper's complexity columns beside the published figures", _paper_flags)
def cmd_paper(args: argparse.Namespace) -> int:
    from sksearch.paper import write_report

    csv_path, md_path = write_report(args.out)
    print(md_path.read_text())
    print(f"wrote {csv_path} and {md_path}")
    return 0


def _latency_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="preset name, spec YAML file, or space YAML file (each of its networks)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch", type=positive_int, default=8, help="batch of the throughput run (latency: 1)")
    parser.add_argument("--threads", type=positive_int, help="torch's CPU threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--runs", type=positive_int, default=10, help="timed runs (the median counts)")
    parser.add_argument(
        "--samples", type=positive_int, default=20, help="networks drawn from a space with a float range"
    )
    parser.add_argument("--store", help="where timings are cached (default: results/store); measured once each")
    parser.add_argument("--remeasure", action="store_true", help="time every network again, replacing cached figures")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")


@verb("latency", "measured latency (batch 1) and throughput of a preset, spec or a space's networks", _latency_flags)
def cmd_latency(args: argparse.Namespace) -> int:
    named = None if is_space_file(args.model) else spec_argument(args.model)  # refused before torch is imported
    from sksearch.search.timings import check_device, network_timings, space_networks

    check_device(args.device)
    networks = [named] if named else space_networks(args.model, args.samples)
    frame = network_timings(networks, device=args.device, batch=args.batch, threads=args.threads,
                            channels_last=args.channels_last, runs=args.runs, store=args.store,
                            remeasure=args.remeasure)  # fmt: skip
    if args.format == "csv":
        print(frame.to_csv(index=False), end="")
    elif args.format == "json":
        print(frame.to_json(orient="records", indent=2, date_format="iso"))
    else:
        shown = frame.drop(columns=["device", "threads", "batch", "cached", "measured_at"])
        print(shown.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
        first = frame.iloc[0]
        print(f"measured on {first['device']}, {first['threads']} threads; latency at batch 1, "
              f"throughput (images/s) at batch {first['batch']}; latency_spread: IQR / median of the runs")  # fmt: skip
        print(_cache_note(frame))
    return 0


def _cache_note(frame) -> str:
    """Whether the figures were measured now or read from the cache, and when those were measured."""
    cached = frame[frame["cached"]]
    if cached.empty:
        return f"measured now; cached in {frame.attrs['store']}"
    when = sorted({f"{moment:%Y-%m-%d %H:%M} UTC" for moment in cached["measured_at"].dropna()})
    dates = f"measured {' to '.join(dict.fromkeys([when[0], when[-1]]))}" if when else "measured before dates were kept"
    store = frame.attrs["store"]
    return f"{len(cached)} of {len(frame)} from the cache in {store} ({dates}); --remeasure times them again"
