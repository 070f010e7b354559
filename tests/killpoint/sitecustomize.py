"""Test hook, inert unless FER_PAUSE is set: pause a stage right after its N-th call of a function so a test can
SIGKILL it at a known point (e.g. halfway through writing an HDF5 store). Put this folder on PYTHONPATH.

FER_PAUSE="<script suffix>|<module>:<function>|<n>|<marker file>": in a process whose argv[0] ends with <script
suffix>, the n-th call of module.function completes, then the process writes its pid to <marker file> and sleeps.
"""

from __future__ import annotations

import os
import sys

_SPEC = os.environ.get("FER_PAUSE", "")


def _install(spec: str) -> None:
    import importlib
    import time
    from pathlib import Path

    _, target, n, marker = spec.split("|")
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    real = getattr(module, name)
    calls = [0]

    def paused(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == int(n):
            Path(marker).write_text(str(os.getpid()))
            time.sleep(300)  # the test kills us here; if it does not, give up after 5 minutes
        return out

    setattr(module, name, paused)


if _SPEC and sys.argv and sys.argv[0].replace(os.sep, "/").endswith(_SPEC.split("|")[0]):
    _install(_SPEC)
