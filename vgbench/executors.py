"""Where independent build steps run: in this process, or fanned out over a Ray cluster."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .errors import VgbenchError


class LocalExecutor:
    """Run steps one after another in this process."""

    name = "local"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any],
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """``[fn(x) for x in items]``, calling ``on_done(index, result)`` after each."""
        return in_order(fn, items, on_done)


class RayExecutor:
    """Run each step as a Ray task: one per GPU where the cluster has GPUs, else one per CPU slot."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_step: float = 1.0):
        try:
            import ray
        except ImportError:
            raise VgbenchError("--executor ray needs Ray: pip install 'vgbench[cluster]'") from None
        if address and address != "auto":
            _check_reachable(address)
        try:
            if not ray.is_initialized():
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                         include_dashboard=False, configure_logging=False)
        except Exception as exc:
            where = address or "a new local cluster"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise VgbenchError(f"cannot reach the Ray cluster at {where} ({first}); start one with `ray start --head` "
                               "or pass --ray-address HOST:PORT") from None
        gpus = ray.cluster_resources().get("GPU", 0)
        self.options = {"num_gpus": 1, "num_cpus": cpus_per_step} if gpus else {"num_cpus": cpus_per_step}
        self.address = address

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any],
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Submit every item, call ``on_done(index, result)`` as each finishes, return the results in order."""
        import ray

        remote = ray.remote(**self.options)(_apply)  # fn may be any picklable callable, not only a function
        shared_fn = ray.put(fn)
        refs = [remote.remote(shared_fn, x) for x in items]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = refs
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = index[ref]
                results[i] = ray.get(ref)
                if on_done:
                    on_done(i, results[i])
        return results


def in_order(fn: Callable[[Any], Any], items: Sequence[Any], on_done: Callable[[int, Any], None] | None = None) -> list:
    """``[fn(x) for x in items]`` in this process, calling ``on_done(index, result)`` after each."""
    out = []
    for i, x in enumerate(items):
        out.append(fn(x))
        if on_done:
            on_done(i, out[-1])
    return out


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast (Ray itself retries for minutes) when nothing listens at ``host:port``."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise VgbenchError(f"cannot reach the Ray cluster at {address} ({type(exc).__name__}: {exc}); "
                           "start one with `ray start --head` or fix --ray-address HOST:PORT") from None


def make_executor(name: str, address: str | None = None):
    """The executor named on the command line."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise VgbenchError(f"--executor {name!r}: choose local or ray")
