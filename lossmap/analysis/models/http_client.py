"""JSON over HTTP(S) to a model server: timeouts, retries with backoff, clear failures.

Standard library only (``urllib``). TLS certificates are verified (the system's store, or
``SSL_CERT_FILE``); an API key comes from the environment only (``LOSSMAP_API_KEY``), never
from workspace settings, so a cloned repository cannot point lossmap at a server with the
user's key. Request and response bodies hold source code: they are never logged, and error
messages quote only the server's own error text, cut short.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LossmapError

#: The environment variable holding the bearer token sent to every model server.
API_KEY_ENV = "LOSSMAP_API_KEY"
#: Seconds a request may take (a 2,000-token window on a slow CPU server takes minutes).
DEFAULT_TIMEOUT = 600.0
#: Tries per request when the server cannot be reached or says it is busy.
DEFAULT_TRIES = 3
#: Statuses worth trying again: rate limits and gateways between the client and a
#: restarting server.
_RETRY_STATUSES = {408, 429, 502, 503, 504}
#: Characters of a server's error text quoted in a message.
_QUOTED = 200


class RemoteError(LossmapError):
    """A model server refused a request or answered in a way lossmap cannot use."""


class RemoteUnavailable(RemoteError):
    """A model server could not be reached (down, wrong address, timed out): the request
    can succeed later unchanged."""


@dataclass
class HttpClient:
    """Posts and gets JSON under one server address (``root``, no trailing slash)."""

    root: str
    timeout: float = DEFAULT_TIMEOUT
    tries: int = DEFAULT_TRIES
    #: Seconds before the second try; doubled for each further one.
    backoff: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        self.root = self.root.rstrip("/")
        self._context = ssl.create_default_context()  # verifies certificates and host names

    def get(self, path: str, timeout: float | None = None) -> Any:
        """GET ``path`` (relative to ``root``) and decode the JSON answer."""
        return self._call("GET", path, None, timeout)

    def post(self, path: str, body: dict, timeout: float | None = None) -> Any:
        """POST ``body`` as JSON to ``path`` and decode the JSON answer."""
        return self._call("POST", path, json.dumps(body).encode(), timeout)

    def _call(self, method: str, path: str, data: bytes | None, timeout: float | None) -> Any:
        url = f"{self.root}/{path.lstrip('/')}"
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        key = os.environ.get(API_KEY_ENV, "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        delay = self.backoff
        for attempt in range(1, max(self.tries, 1) + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(
                    request, timeout=timeout or self.timeout, context=self._context
                ) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                detail = _error_text(err)
                if err.code in _RETRY_STATUSES and attempt < self.tries:
                    self.sleep(delay)
                    delay *= 2
                    continue
                if err.code in (401, 403):
                    hint = f" (set {API_KEY_ENV} to the server's API key)"
                    raise RemoteError(f"{url}: HTTP {err.code}{detail}{hint}") from None
                kind = RemoteUnavailable if err.code in _RETRY_STATUSES else RemoteError
                raise kind(f"{url}: HTTP {err.code}{detail}") from None
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                if isinstance(reason, ssl.SSLError):
                    raise RemoteError(f"{url}: TLS failed: {reason}") from None
                if attempt < self.tries:
                    self.sleep(delay)
                    delay *= 2
                    continue
                what = "timed out" if isinstance(reason, socket.timeout | TimeoutError) else reason
                raise RemoteUnavailable(
                    f"cannot reach the model server at {self.root} ({what}; tried {attempt}x)"
                ) from None
            except (ValueError, UnicodeDecodeError):
                raise RemoteError(f"{url}: the answer is not JSON") from None
        raise AssertionError("unreachable")


def _error_text(err: urllib.error.HTTPError) -> str:
    """': <the server's message>' from an error answer's body, cut short, or ''."""
    try:
        body = err.read().decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            inner = parsed.get("error", parsed.get("detail", parsed.get("message", parsed)))
            if isinstance(inner, dict):
                inner = inner.get("message", inner)
            body = inner if isinstance(inner, str) else json.dumps(inner)
    except ValueError:
        pass
    body = " ".join(body.split())
    if not body:
        return ""
    return f": {body[:_QUOTED]}{'...' if len(body) > _QUOTED else ''}"
