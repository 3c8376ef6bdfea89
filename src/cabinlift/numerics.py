"""Floating-point numerics that do not depend on the CPU: params.yaml's ``numerics.mode``.

The libraries under the stages pick their kernels by the CPU they find: PyTorch's own CPU
kernels by the widest vector instructions (AVX2 or AVX-512), MKL (PyTorch's matrix products)
by CPU maker and model, oneDNN by instruction set and cache sizes, NumPy's loops and its
OpenBLAS by instruction set, and each splits a sum over as many threads as it is given. Each
choice rounds differently, and training grows a last-bit difference into millimetres of MPJPE
on the demo's short runs. So:

* ``portable`` pins every such choice to one that all machines of the floor, x86-64 with AVX2
  and FMA (``x86-64-v3``), compute alike: PyTorch's AVX2 kernels, MKL's code path that is kept
  identical on Intel and AMD CPUs (``MKL_CBWR=COMPATIBLE``), OpenBLAS's AVX2 (Haswell) kernels
  on one thread, NumPy's loops up to AVX2, oneDNN off, and one intra-op thread per unit of work
  (a stage runs units in parallel instead). PyTorch reads some of these settings when it loads,
  so a command sets them in its environment and, where they were not already there, starts
  itself again once with them (:func:`prepare`). On CUDA, PyTorch's deterministic algorithms
  are used where it has them, and TF32 is off.
* ``native`` leaves every choice to the libraries: faster, and deterministic on one machine,
  but the bytes then depend on the machine.

What a process computes under is its *regime* (:func:`regime`): the mode in effect, the
library versions and a digest of a small canonical computation (:func:`probe`), plus, in
native mode, the CPU. The run store keys every run on it and ``check`` writes it to
``data/inputs/numerics.json``, on which every computing stage depends, so a result computed
under one regime is never taken for one of another. A machine outside the floor (another
architecture, or no AVX2) cannot compute the portable numbers: it computes natively, says so
once, and its regime says so too. docs/operations.md (*Numerics*) has the measured cost and
what is bitwise where.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from typing import Any

from cabinlift.errors import CabinliftError

MODES: tuple[str, ...] = ("portable", "native")
#: The machines whose portable results agree, in words (for messages and docs).
FLOOR = "x86-64 with AVX2 and FMA (x86-64-v3)"
#: PyTorch's kernel level in portable mode, as ``torch.backends.cpu.get_cpu_capability()``
#: names it.
PORTABLE_CAPABILITY = "AVX2"
#: NumPy's dispatch targets above the floor (NumPy 2.4's names), switched off in portable mode.
NUMPY_ABOVE_FLOOR: tuple[str, ...] = ("X86_V4", "AVX512_ICL", "AVX512_SPR")
#: The environment of portable mode, read by each library when it loads or first computes.
PORTABLE_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch: its AVX2 kernels, also on AVX-512 machines
    "MKL_CBWR": "COMPATIBLE",  # MKL: the one branch that is identical on Intel and AMD
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (switched off as well, see apply())
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy/SciPy's OpenBLAS: its AVX2 kernels
    "OPENBLAS_NUM_THREADS": "1",
    "NPY_DISABLE_CPU_FEATURES": " ".join(NUMPY_ABOVE_FLOOR),  # NumPy's loops: up to AVX2
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # cuBLAS: deterministic reductions
}
#: Marks a process started again by prepare() (so it never restarts twice).
_RESTARTED = "CABINLIFT_NUMERICS_RESTARTED"

_state: dict[str, Any] = {"mode": None, "effective": None, "probe": None, "warned": False}


def environment(mode: str) -> dict[str, str]:
    """The environment variables ``mode`` sets (none for ``native``)."""
    if mode not in MODES:
        raise ValueError(f"unknown numerics mode {mode!r}; expected one of {', '.join(MODES)}")
    return dict(PORTABLE_ENV) if mode == "portable" else {}


def cpu_features() -> dict[str, bool]:
    """The CPU's own instruction sets that matter here: as NumPy detects them (by CPUID) once it
    is loaded; before, from /proc/cpuinfo where there is one (NumPy's settings must come
    first). The two agree except under an emulator such as qemu-user, which answers CPUID for
    the CPU it emulates but shows the host's /proc/cpuinfo."""
    flags = None
    if "numpy" not in sys.modules:
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((line.split(":", 1)[1].split() for line in f
                              if line.startswith("flags")), None)
        except OSError:
            flags = None
    if flags is not None:
        return {"AVX2": "avx2" in flags, "FMA3": "fma" in flags, "AVX512F": "avx512f" in flags}
    from numpy._core._multiarray_umath import __cpu_features__ as found

    return {name: bool(found.get(name, False)) for name in ("AVX2", "FMA3", "AVX512F")}


def below_floor() -> str | None:
    """Why this machine cannot compute the portable numbers, or None when it can."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"this is a {platform.machine()} machine, not x86-64"
    flags = cpu_features()
    missing = [f for f in ("AVX2", "FMA3") if not flags[f]]
    if missing:
        return f"this CPU has no {' or '.join(missing)}"
    return None


def prepare(mode: str, restart: list[str] | None = None) -> None:
    """Put ``mode``'s environment in place before anything computes. With ``restart`` (the
    command line of this process), a process that lacks some of it starts again with it, once
    (libraries loaded before it was set would not see it); without, the variables are set for
    whatever loads from now on and :func:`apply` checks what took effect."""
    restarted = os.environ.pop(_RESTARTED, None) == "1"  # not inherited by child processes
    env = environment(mode)
    missing = {k: v for k, v in env.items() if os.environ.get(k) != v}
    if not missing or below_floor() is not None:
        return
    os.environ.update(missing)
    if restart is not None and not restarted:
        os.environ[_RESTARTED] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "cabinlift", *restart[1:]])


def _warn(message: str) -> None:
    if not _state["warned"]:
        print(f"cabinlift: warning: {message}", file=sys.stderr)
        _state["warned"] = True


def apply(mode: str) -> str:
    """Set ``mode``'s switches in this process (after :func:`prepare`) and check that its
    settings took effect; returns the mode in effect: ``native`` where this machine is below
    the floor (with a warning), else ``mode``. A library that was loaded before the settings
    could reach it is a one-line error saying how to start the process instead."""
    import torch

    environment(mode)  # the name is checked
    effective = mode
    if mode == "portable":
        reason = below_floor()
        if reason is not None:
            _warn(f"numerics.mode 'portable' needs {FLOOR}, but {reason}: computing natively, so "
                  "results will differ in the last digits from those of the floor "
                  "(`cabinlift verify` shows by how much)")
            effective = "native"
    if effective == "portable":
        os.environ.update(PORTABLE_ENV)  # for whatever loads from here on
        late = _late_settings()
        if late:
            exports = " ".join(f"{k}='{v}'" for k, v in PORTABLE_ENV.items())
            raise CabinliftError(
                f"numerics.mode 'portable': {'; '.join(late)}, before its setting could apply; "
                f"run the stage through the `cabinlift` command, or set {exports} before "
                "starting Python")
        torch.backends.mkldnn.enabled = False
        if torch.cuda.is_available():  # on the CPU it changes nothing here; it loads inductor
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        torch.backends.mkldnn.enabled = torch.backends.mkldnn.is_available()
        if torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    if (_state["mode"], _state["effective"]) != (mode, effective):
        _state["probe"] = None
    _state.update(mode=mode, effective=effective)
    return effective


def _late_settings() -> list[str]:
    """The portable settings that did not take effect because their library was loaded or
    had computed already."""
    import torch
    from numpy._core._multiarray_umath import __cpu_features__ as found

    late = []
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != PORTABLE_CAPABILITY:
        late.append(f"PyTorch computes with its {capability} kernels (it computed before "
                    f"ATEN_CPU_CAPABILITY was set)")
    above = [f for f in NUMPY_ABOVE_FLOOR if found.get(f)]
    if above:
        late.append(f"NumPy dispatches to {', '.join(above)} (it was imported before "
                    "NPY_DISABLE_CPU_FEATURES was set)")
    core = openblas_core()
    if core is not None and core.lower() != PORTABLE_ENV["OPENBLAS_CORETYPE"].lower():
        late.append(f"OpenBLAS uses its {core} kernels (it was loaded before OPENBLAS_CORETYPE "
                    "was set)")
    return late


def openblas_core() -> str | None:
    """The kernels NumPy's OpenBLAS runs (None where that cannot be asked)."""
    import ctypes
    from pathlib import Path

    import numpy as np

    libs = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("libscipy_openblas*.so"))
    for lib in libs:
        try:
            handle = ctypes.CDLL(str(lib))
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            fn = getattr(handle, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def mode_in_effect() -> str:
    """The mode :func:`apply` put in effect in this process (``native`` before any)."""
    return _state["effective"] or "native"


def unit_threads(budget: int, workers: int) -> int:
    """The intra-op threads of every unit of work when ``workers`` units run at once on a
    budget of ``budget`` threads: one in portable mode (sums split over threads round by the
    thread count), else the budget shared out."""
    if mode_in_effect() == "portable":
        return 1
    return budget if workers == 1 else max(1, budget // workers)


def probe() -> str:
    """SHA-256 of a small computation that exercises what the stages compute with (PyTorch's
    matrix products, reductions, transcendental functions, random numbers; NumPy's loops,
    OpenBLAS and LAPACK), on one thread: two processes that give the same digest compute these
    kernels alike. Cached per process and mode."""
    if _state["probe"] is not None:
        return _state["probe"]
    import numpy as np
    import torch

    h = hashlib.sha256()
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(64, 1024, generator=g)
        w = torch.randn(1024, 512, generator=g) / 32
        x = torch.nn.functional.gelu(a @ w)
        b = torch.randn(8, 13, 64, generator=g)
        att = torch.softmax(b @ b.transpose(1, 2) / 8, dim=-1) @ b
        ln = torch.nn.functional.layer_norm(att, (64,))
        for t in (x, x.sum(0), x.exp().mean(1), torch.tanh(ln), ln.var(0),
                  torch.randn(1000, generator=g)):
            h.update(t.detach().contiguous().numpy().tobytes())
    finally:
        torch.set_num_threads(saved)
    rng = np.random.default_rng(0)
    m = rng.normal(size=(128, 96))
    m32 = m.astype(np.float32)
    for arr in (m @ m.T, m32 @ m32.T, np.sin(m32), np.exp(m), np.linalg.svd(m[:13, :3])[1],
                m.sum(axis=0)):
        h.update(np.ascontiguousarray(arr).tobytes())
    _state["probe"] = h.hexdigest()
    return _state["probe"]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    import numpy as np
    import scipy
    import torch

    return {"python": ".".join(platform.python_version_tuple()[:2]), "torch": torch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__}


def _device_info(device: Any) -> dict[str, Any]:
    import torch

    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type != "cuda":
        return {"device": "cpu"}
    if not torch.cuda.is_available():  # a Ray driver planning GPU tasks: only the kind is known
        return {"device": str(device)}
    index = device.index or 0
    return {"device": str(device), "gpu": torch.cuda.get_device_name(index),
            "gpu_capability": list(torch.cuda.get_device_capability(index)),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def regime(device: Any = None) -> dict[str, Any]:
    """What a result computed in this process depends on beyond code, data and params: the
    mode in effect, the library versions, the probe digest, the device (a GPU by name and
    compute capability), and, in native mode, the CPU and the kernel level PyTorch uses."""
    import torch

    out: dict[str, Any] = {"mode": mode_in_effect(), **_versions(), "probe": probe(),
                           **_device_info(device)}
    if out["mode"] != "portable":
        out.update(cpu=_cpu_name(), cpu_capability=torch.backends.cpu.get_cpu_capability())
    return out


def fingerprint(device: Any = None) -> dict[str, Any]:
    """Everything about how this process computes, for records and ``cabinlift verify``: the
    regime, the mode asked for, the CPU and its instruction sets, the kernel levels in use."""
    import torch

    flags = cpu_features()
    top = "AVX512" if flags["AVX512F"] else "AVX2" if flags["AVX2"] else "below AVX2"
    return {**regime(device), "mode_asked": _state["mode"] or "native",
            "machine": platform.machine(), "cpu": _cpu_name(), "cpu_isa": top,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "openblas": openblas_core(), "mkldnn": bool(torch.backends.mkldnn.enabled),
            "settings": {k: os.environ.get(k) for k in PORTABLE_ENV}}
