"""A third-party package imported on first use, not when the module naming it is imported.

The console's picker lists every scenario, and listing one imports its module; a driver such
as psycopg or httpx is needed only once a run starts. `lazy("psycopg")` puts the package in
`sys.modules` at once and runs its code at the first attribute read (importlib's
LazyLoader). Only for a package's top-level name, read as `name.attr` in function bodies:
`from name import X` would load it at once. Stdlib only, like the rest of the core.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
