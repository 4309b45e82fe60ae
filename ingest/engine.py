"""Where a job's work runs: here (`local`, the default: threads in this process, nothing to start) or on a
Ray cluster (`ray`). The engine decides where work runs, never what it computes: both call the same
functions (docs/architecture.md, "Scaling out").

`ray_cluster()` connects the way Ray's own tools do: to `RAY_ADDRESS` when it is set (a cluster made with
`ray start --head`), else to a private local cluster started for this job and stopped after it. That local
cluster has no dashboard, sends no usage statistics, keeps Ray's token authentication (on by default in
Ray 2.60, so no other machine can submit work to it) and keeps its temp files in a folder of the system
temp dir that is removed afterwards. A process that is already connected (a notebook, the test suite)
keeps its connection. Ray is an optional dependency, imported only here and only when asked for.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

ENGINES = ("local", "ray")
RAY_TEMP_VARIABLE = "VIDREC_RAY_TEMP"  # a temp dir for the local cluster, made and removed by a parent process
INSTALL = "pip install 'vidrec[distributed]'"


class EngineError(Exception):
    """The engine cannot be used (Ray missing, a cluster that cannot be reached); the message says why."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise EngineError(f"--engine ray needs Ray, which is not installed: {INSTALL}") from exc
    return ray


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "ray":
        import_ray()


@contextlib.contextmanager
def ray_cluster() -> Iterator[Any]:
    """The `ray` module, connected to a cluster for the duration of the block."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    temp = _connect(ray)
    try:
        yield ray
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def ray_for_process() -> Any:
    """The `ray` module, connected for as long as this process lives (a server whose shard actors answer its
    searches): the same connection rules as `ray_cluster`, undone at exit."""
    ray = import_ray()
    if not ray.is_initialized():
        temp = _connect(ray)

        def stop() -> None:
            ray.shutdown()  # before its temp dir goes
            if temp:
                shutil.rmtree(temp, ignore_errors=True)

        atexit.register(stop)
    return ray


@contextlib.contextmanager
def ray_temp_dir() -> Iterator[str | None]:
    """For a child process that may start a local cluster (`vidrec serve --engine ray`'s app): a temp dir to hand
    it in VIDREC_RAY_TEMP, removed after the block whether or not the child cleaned up (None with RAY_ADDRESS)."""
    if os.environ.get("RAY_ADDRESS"):
        yield None
        return
    temp = tempfile.mkdtemp(prefix="vidrec-ray-")
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _connect(ray: Any) -> str | None:
    """Connect to RAY_ADDRESS, else start a private local cluster; the temp dir to remove afterwards (None when
    there is none, or when the parent that made it removes it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = os.environ.get("RAY_ADDRESS")
    given = os.environ.get(RAY_TEMP_VARIABLE)
    temp = None if address else given or tempfile.mkdtemp(prefix="vidrec-ray-")
    try:
        if address:
            ray.init(address=address, include_dashboard=False)
        else:
            ray.init(address="local", include_dashboard=False, _temp_dir=temp)
    except Exception as exc:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
        where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray cluster"
        raise EngineError(f"cannot connect to {where}: {' '.join(str(exc).split())[:300]}") from exc
    return None if given else temp


def cluster_gpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def check_room(ray: Any, workers: int, actor_cpus: float, what: str, beside: float = 0.0) -> None:
    """Refuse an actor pool the cluster cannot hold (with `beside` CPUs left for tasks): Ray Data would wait
    for ever for room that never comes."""
    cpus = cluster_cpus(ray)
    room = int((cpus - beside) / actor_cpus)
    if workers > room:
        tasks = " beside the tasks they feed on" if beside else ""
        raise EngineError(
            f"--ray-workers {workers} {what} need {workers * actor_cpus:g} CPUs{tasks}, and the Ray cluster has "
            f"{cpus}: use --ray-workers {max(1, room)} or fewer, or add nodes"
        )


def innermost(exc: BaseException) -> str:
    """The one-line reason under Ray's wrappers (a RayTaskError holds the worker's exception as `cause`)."""
    seen = exc
    while True:
        inner = getattr(seen, "cause", None) or seen.__cause__
        if inner is None or inner is seen:
            break
        seen = inner
    lines = [line for line in str(seen).splitlines() if line.strip()]
    text = lines[0] if lines else type(seen).__name__
    return " ".join(text.split())[:300]
