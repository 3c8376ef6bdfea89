"""Where a stage's units of work run: in this process (threads) or as tasks on a Ray cluster.

A unit is a plain function call that depends on nothing but its arguments: a stack of runs of a
fine-tuning stage, one pre-training, one recording's 2D inference. A stage plans its units,
hands them to an executor, and writes every output itself, in a fixed order, from the results
the executor yields in submission order. Which executor ran a unit, on which machine and in
which order the units finished never reaches an output, so the choice (``executor`` in
params.yaml) is not a stage parameter: given the same device and the same intra-op threads per
unit, both executors give the same bytes.

A stage has one code path for both: its units take the same arguments and run the same
functions wherever they run. The arguments are portable (NumPy arrays, device names decided by
:func:`unit_device`, paths, plain settings) and a unit returns its results on the CPU; what
differs between the executors is theirs alone to handle:

* :class:`LocalExecutor` (``kind: local``, or no ``executor`` section): the units run one after
  another in this process, or on a pool of ``workers`` threads that share the stage's thread
  budget.
* :class:`RayExecutor` (``kind: ray``): every unit is a Ray task reserving ``cpus_per_task``
  CPUs (its intra-op threads) and ``gpus_per_task`` GPUs. The package's source travels with the
  job (``py_modules``), so every node runs exactly the stage's code; large inputs shared by all
  units (the processed arrays, the pre-trained weights) are put into Ray's object store once
  (:meth:`Executor.share`), and the read-only arrays a task gets from there are made writable
  copies, as a local unit has them. A task runs in the stage's folder (where a node has it), so
  relative paths mean there what they mean to the stage. A task whose worker or node dies is
  run again by Ray (``max_retries`` times); units write run-store entries atomically, so a task
  killed half-way leaves none.

Each finished unit appends one JSON line to the executor's record (``record``): the unit's name,
the function it ran, the node it ran on, its process id, GPUs and wall time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cabinlift.config import Executor as ExecutorSection
from cabinlift.errors import CabinliftError, first_sentence
from cabinlift.resources import thread_budget


def is_remote(config: ExecutorSection | None) -> bool:
    """Units run in other processes (possibly other machines): ``executor.kind`` is ``ray``.
    No ``executor`` section is the local executor."""
    return config is not None and config.kind == "ray"


def unit_device(config: ExecutorSection | None, name: str, source: str) -> str:
    """The device the units of executor ``config`` compute on for the device param ``name``
    (``source`` names it in errors), decided before any unit starts (a training run's store key
    holds it) and independent of the machine the stage runs on. Locally it is this machine's
    (:func:`cabinlift.devices.resolve_device`: ``auto`` is CUDA when it has it, one it lacks is
    an error). On Ray it is what a task reserves: ``auto`` is CUDA when a task reserves GPUs
    (``executor.gpus_per_task``), else the CPU; a task sees its own GPUs as ``cuda:0``, ...,
    and the params check holds any other name to that."""
    if not is_remote(config):
        from cabinlift.devices import resolve_device

        return str(resolve_device(name, source))
    if name == "auto":
        return "cuda" if config.gpus_per_task > 0 else "cpu"
    return name


def function_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a unit's function, as the record names it."""
    return f"{fn.__module__}.{fn.__qualname__}"


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``fn(*args)``. ``fn`` must be a module-level function (a Ray task
    imports it by name); ``name`` says what it is in the progress bar, the log and errors."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


def unit_error(name: str, exc: BaseException) -> CabinliftError:
    """The one-line error of a failed unit: its name, then the problem. A CabinliftError keeps
    its message; anything else (a defect, not bad input) is named by type, and its traceback
    goes to stderr first."""
    if isinstance(exc, CabinliftError):
        return CabinliftError(f"{name}: {exc}")
    return CabinliftError(f"{name}: {type(exc).__name__}: {first_sentence(exc)}")


def _print_traceback(exc: BaseException) -> None:
    if not isinstance(exc, CabinliftError):
        tqdm.write("".join(traceback.format_exception(exc)).rstrip(), file=sys.stderr)


class Executor:
    """What a stage needs from an executor: the intra-op threads every unit computes on,
    whether a unit may draw its own progress bar (:attr:`unit_bars`), :meth:`share` for inputs
    common to many units, and :meth:`map`."""

    #: Units run one at a time in this process, where a unit's own progress bar shows.
    unit_bars = False

    def __init__(self, threads: int, record: Path | None = None) -> None:
        self.threads = threads
        self.record = Path(record) if record is not None else None
        self._lock = threading.Lock()
        if self.record is not None:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            self.record.write_text("")

    def share(self, value: Any) -> Any:
        """A handle to ``value`` to pass (as a whole argument) to many units."""
        return value

    def map(self, units: Sequence[Unit], desc: str) -> Iterator[Any]:
        """Run ``units`` and yield their results in submission order, with a progress bar over
        finished units. The first failure stops the units not yet started and is raised as a
        one-line :class:`CabinliftError` naming its unit."""
        raise NotImplementedError

    def _write_record(self, unit: Unit, info: dict[str, Any]) -> None:
        if self.record is not None:
            with self._lock, self.record.open("a") as f:
                f.write(json.dumps({"unit": unit.name, "fn": function_name(unit.fn), **info})
                        + "\n")

    def close(self) -> None:
        """Release what the executor holds (a Ray connection or instance)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """Units in this process: one after another in the calling thread (``workers`` 1), or on a
    pool of ``workers`` threads, each unit computing on ``threads`` intra-op threads."""

    def __init__(self, workers: int = 1, threads: int | None = None,
                 record: Path | None = None) -> None:
        from cabinlift.numerics import unit_threads

        super().__init__(threads if threads is not None
                         else unit_threads(thread_budget(), workers), record)
        self.workers = workers
        self.unit_bars = workers == 1
        self.node = f"local:{socket.gethostname()}"

    def _call(self, unit: Unit) -> tuple[Any, dict[str, Any]]:
        start = time.perf_counter()
        result = unit.fn(*unit.args)
        return result, {"node": self.node, "pid": os.getpid(), "gpus": [],
                        "wall_s": round(time.perf_counter() - start, 3)}

    def map(self, units: Sequence[Unit], desc: str) -> Iterator[Any]:
        bar = tqdm(total=len(units), desc=desc, unit="unit")
        try:
            if self.workers == 1:
                for unit in units:
                    try:
                        result, info = self._call(unit)
                    except Exception as exc:
                        _print_traceback(exc)
                        raise unit_error(unit.name, exc) from exc
                    self._write_record(unit, info)
                    bar.update()
                    yield result
                return
            yield from self._pool(units, bar)
        finally:
            bar.close()

    def _pool(self, units: Sequence[Unit], bar: tqdm) -> Iterator[Any]:
        import torch

        def run(unit: Unit) -> Any:
            result, info = self._call(unit)
            self._write_record(unit, info)
            bar.update()
            return result

        saved = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        pool = ThreadPoolExecutor(self.workers)
        try:
            futures = [pool.submit(run, u) for u in units]
            for unit, future in zip(units, futures, strict=True):
                try:
                    result = future.result()
                except Exception as exc:
                    _print_traceback(exc)
                    raise unit_error(unit.name, exc) from exc
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(saved)


def _check_reachable(address: str | None, source: str, timeout_s: float = 10.0) -> None:
    """Fail at once, in one line, when a cluster address names a port nobody listens on (Ray
    itself retries such an address for many minutes). The address's form was checked with
    params.yaml."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise CabinliftError(
            f"{source}: key 'executor.address': nothing answers at {address!r} "
            f"({exc.strerror or exc}); start the cluster first (docs/cluster.md)") from None


def _writable(value: Any) -> Any:
    """``value`` with every read-only NumPy array in it (as Ray's object store hands arrays
    out, also inside lists, tuples, dicts and dataclasses) replaced by a writable copy."""
    if isinstance(value, np.ndarray):
        return value if value.flags.writeable else value.copy()
    if type(value) in (list, tuple):
        return type(value)(_writable(v) for v in value)
    if type(value) is dict:
        return {k: _writable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _writable(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value


@contextlib.contextmanager
def _in_folder(folder: str) -> Iterator[None]:
    """Run in the stage's ``folder`` where this node has it (else where the worker is)."""
    here = os.getcwd()
    try:
        os.chdir(folder)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.chdir(here)


def _remote_call(fn: Callable[..., Any], threads: int, numerics_mode: str,
                 regime: dict[str, Any], folder: str, *args: Any) -> tuple[Any, str, dict]:
    """What a Ray worker runs for one unit: ``fn(*args)`` under the stage's numerics mode, on
    ``threads`` intra-op threads, in the stage's ``folder``, on writable arrays, its stderr (the
    unit's log lines) captured and returned with the result, so that the stage prints it; where
    it ran. A worker that computes under another numerics regime (CPU-side) than the stage
    planned with is an error naming its node: its results would not be those the run store keys
    promise."""
    import ray
    import torch

    from cabinlift import numerics

    numerics.apply(numerics_mode)
    here = numerics.regime()
    if here != regime:
        diff = {k: (regime.get(k), here.get(k)) for k in sorted(set(regime) | set(here))
                if regime.get(k) != here.get(k)}
        raise CabinliftError(
            f"Ray node {ray.get_runtime_context().get_node_id()[:12]} computes under another "
            f"numerics regime than the stage planned with ({diff}); install the same libraries "
            "on every node (requirements.txt)")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer), _in_folder(folder):
        result = fn(*_writable(args))
    ctx = ray.get_runtime_context()
    info = {"node": ctx.get_node_id(), "pid": os.getpid(),
            "gpus": [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])],
            "wall_s": round(time.perf_counter() - start, 3)}
    return result, buffer.getvalue(), info


class RayExecutor(Executor):
    """Units as Ray tasks; see the module docstring. ``local_cpus`` is how many CPUs a private
    instance (``address`` None) offers: the stage's thread budget."""

    def __init__(self, config: ExecutorSection, local_cpus: int, record: Path | None = None,
                 source: str = "params.yaml") -> None:
        try:
            import ray
        except ImportError as exc:
            raise CabinliftError(
                f"{source}: key 'executor.kind' is 'ray', but Ray is not installed "
                "(pip install -r requirements.txt)") from exc
        from cabinlift import numerics

        super().__init__(config.cpus_per_task, record)
        self.numerics_mode = numerics.mode_in_effect()
        self.regime = numerics.regime()
        self.config = config
        self.source = source
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            self._connect(local_cpus)
            self._started = True
        gpus = config.gpus_per_task
        self._task = ray.remote(
            num_cpus=config.cpus_per_task, num_gpus=gpus, max_retries=config.max_retries,
            # a GPU task gets a fresh process: CUDA binds a process to the GPUs it first saw
            max_calls=1 if gpus > 0 else 0,
        )(_remote_call)

    def _connect(self, local_cpus: int) -> None:
        import logging

        import cabinlift
        from cabinlift import numerics

        runtime_env = {
            "py_modules": [str(Path(cabinlift.__file__).parent)],
            "excludes": ["__pycache__", "*.pyc"],
            # no progress bars inside tasks; the libraries' settings of the numerics mode, in
            # place before a worker loads them
            "env_vars": {"TQDM_DISABLE": "1", **numerics.environment(self.numerics_mode)},
        }
        address = self.config.address
        _check_reachable(address, self.source)
        kwargs: dict[str, Any] = {"runtime_env": runtime_env, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        if address is None:
            kwargs.update(address="local", num_cpus=local_cpus, include_dashboard=False)
        else:
            kwargs["address"] = address
        try:
            self._ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray instance" if address is None else f"Ray at {address!r}"
            raise CabinliftError(
                f"{self.source}: key 'executor.address': cannot start or reach {where} "
                f"({first_sentence(exc)}); start the cluster first (docs/cluster.md)") from None
        total = self._ray.cluster_resources()
        need = {"CPU": self.config.cpus_per_task, "GPU": self.config.gpus_per_task}
        for resource, amount in need.items():
            if amount > 0 and total.get(resource, 0) < amount:
                self.close()
                raise CabinliftError(
                    f"{self.source}: key 'executor.{resource.lower()}s_per_task' asks for "
                    f"{amount:g} {resource}s per task, but the Ray cluster has "
                    f"{total.get(resource, 0):g}")

    def share(self, value: Any) -> Any:
        return self._ray.put(value)

    def _error(self, unit: Unit, exc: BaseException) -> CabinliftError:
        from ray.exceptions import RayTaskError

        if isinstance(exc, RayTaskError):  # the unit's own exception, raised in the task
            cause = exc.cause if exc.cause is not None else exc
            if not isinstance(cause, CabinliftError):
                tqdm.write(str(exc).rstrip(), file=sys.stderr)  # the remote traceback
            return unit_error(unit.name, cause)
        return CabinliftError(  # the task's worker or node died more often than retried
            f"{unit.name}: the Ray task failed after {self.config.max_retries} retries: "
            f"{type(exc).__name__}: {first_sentence(exc)}")

    def map(self, units: Sequence[Unit], desc: str) -> Iterator[Any]:
        ray = self._ray
        folder = os.getcwd()
        refs = [self._task.options(name=u.name).remote(u.fn, self.threads, self.numerics_mode,
                                                      self.regime, folder, *u.args)
                for u in units]
        index = {ref: i for i, ref in enumerate(refs)}
        done: dict[int, Any] = {}
        pending = list(refs)
        bar = tqdm(total=len(units), desc=desc, unit="unit")
        try:
            for i in range(len(units)):
                while i not in done:
                    ready, pending = ray.wait(pending, num_returns=1)
                    j = index[ready[0]]
                    try:
                        result, log_text, info = ray.get(ready[0])
                    except Exception as exc:
                        raise self._error(units[j], exc) from None
                    if log_text:
                        tqdm.write(log_text.rstrip("\n"), file=sys.stderr)
                    self._write_record(units[j], info)
                    done[j] = result
                    bar.update()
                yield done.pop(i)
        finally:
            bar.close()
            for ref in pending:  # after a failure: stop what has not finished
                ray.cancel(ref)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def open_executor(config: ExecutorSection | None, workers: int = 1, threads: int | None = None,
                  record: Path | None = None, source: str = "params.yaml") -> Executor:
    """The executor ``config`` (params.yaml's ``executor`` section) names. ``workers`` and
    ``threads`` are the local executor's threads and the intra-op threads of each (the remote
    one's units use ``cpus_per_task``); ``source`` names params.yaml in errors."""
    if config is not None and is_remote(config):
        return RayExecutor(config, thread_budget(), record, source)
    return LocalExecutor(workers, threads, record)
