"""The driver's watch on its Ray cluster: a sweep whose nodes are all dead stops instead of hanging.

When Ray declares a node dead (a stalled machine missed its health checks), Tune waits for
resources that never come back, and its own loop may block in a call to the dead node. So the watch
runs in two threads of its own: one asks Ray's control store which nodes are alive, the other stops
the process once none has been seen for `grace` seconds, even when the asking itself hangs.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import ray

from sksearch.search.status import unmark_driver
from sksearch.validation import ConfigError

# The exit status of a driver that lost its Ray cluster (every node dead) and stopped.
CLUSTER_LOST = 4
# How long no live node is tolerated before the driver stops, in seconds (default 60).
GRACE_SETTING = "SKSEARCH_CLUSTER_GRACE_S"


def cluster_grace() -> float:
    """The seconds without a live node after which the driver stops: 60, or SKSEARCH_CLUSTER_GRACE_S
    (longer on a cluster whose nodes stall for minutes and recover; shorter to give up sooner)."""
    text = os.environ.get(GRACE_SETTING, "60")
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ConfigError(GRACE_SETTING, f"must be a positive number of seconds, not {text!r}")
    return seconds


def cluster_has_live_cpu() -> bool:
    """Whether Ray's control store knows a live node that offers CPUs."""
    return any(node["Alive"] and node.get("Resources", {}).get("CPU", 0) > 0 for node in ray.nodes())


class ClusterWatch:
    """While entered: exits the process with CLUSTER_LOST, after one line naming the command that
    continues the sweep, when no live node has been seen for `grace` seconds (cluster_grace()).
    The exit is that of a killed driver, which `resume` recovers from exactly; a library caller
    gets the same status."""

    def __init__(self, run_dir: str, grace: float | None = None, every: float = 5.0):
        self.run_dir, self.grace = run_dir, cluster_grace() if grace is None else grace
        self.every = min(every, self.grace / 2)
        self.seen = time.monotonic()
        self.done = threading.Event()

    def __enter__(self) -> ClusterWatch:
        for target in (self._ask, self._judge):
            threading.Thread(target=target, name=f"sksearch-watch{target.__name__}", daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()

    def _ask(self) -> None:
        while not self.done.wait(self.every):
            try:
                if cluster_has_live_cpu():
                    self.seen = time.monotonic()
            except Exception:  # the control store unreachable: no live node seen this time
                pass

    def _judge(self) -> None:
        while not self.done.wait(self.every):
            lost_for = time.monotonic() - self.seen
            if lost_for > self.grace:
                print(f"the Ray cluster is lost (no live node for {lost_for:.0f} s); `sksearch resume "
                      f"{self.run_dir}` continues the sweep", file=sys.stderr, flush=True)  # fmt: skip
                unmark_driver(self.run_dir)
                os._exit(CLUSTER_LOST)
