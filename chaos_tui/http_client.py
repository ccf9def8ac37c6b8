"""What the probes' httpx clients share: one TLS context, and no import storm per request.

A client made with httpx's defaults loads the CA bundle into a TLS context of its own, about
40 ms of CPU, whether or not it ever speaks TLS: a hundred HTTP probes spent seconds on it as
sampling began. `shared_tls()` is that same default context, made once.

httpcore (1.0) runs `import sniffio` every time it takes one of its locks, several times a
request. anyio 4.x no longer installs sniffio, and Python does not remember an import that
failed: each attempt searches every `sys.path` entry again (a dozen `stat` calls), measured
at about a quarter of an HTTP probe's CPU. When sniffio is absent, saying so once in
`sys.modules` makes each of those imports fail at once, as they would anyway; when it is
installed nothing changes.
"""

from __future__ import annotations

import functools
import importlib.util
import ssl
import sys
from typing import TYPE_CHECKING

from chaos_tui.core.lazy import lazy

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy("httpx")  # loaded at the first shared_tls(): the picker needs none of it


def remember_missing(module: str) -> bool:
    """Record `module` as not installed (None in sys.modules) when it cannot be found.
    True when it was recorded so."""
    if module in sys.modules:
        return sys.modules[module] is None
    if importlib.util.find_spec(module) is not None:
        return False
    sys.modules[module] = None  # type: ignore[assignment]  # Python's own mark for "no such module"
    return True


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """httpx's default verifying context (its CA bundle, SSL_CERT_FILE/SSL_CERT_DIR), once."""
    return httpx.create_ssl_context()


remember_missing("sniffio")
