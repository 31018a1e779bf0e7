"""JSON over HTTP(S) to a model server: timeouts, retries with backoff, clear failures.

Standard library only (``urllib``). TLS certificates are verified (the system's store, or
``SSL_CERT_FILE``). An API key comes from the environment only (``LOSSMAP_API_KEY``), never
from settings; it is never sent in clear text to another machine (an ``http://`` address
that is not loopback is refused while a key is set) and never follows a redirect (redirects
are refused: the message names the address to use). Request and response bodies hold source
code: they are never logged, and error messages quote only the server's own error text, cut
short.

Only failures to reach the server are tried again (refused, reset, unreachable, a gateway's
503): a request the server took and did not answer within the timeout is not sent again (it
would queue behind itself on a busy single-worker server); the error says how to allow more.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LossmapError

#: The environment variable holding the bearer token sent to every model server.
API_KEY_ENV = "LOSSMAP_API_KEY"
#: Seconds a request may take: llama-cpp-python's server on 2 CPU cores takes about 0.5 s
#: per prompt token with log-probabilities (a 2,000-token window: about 17 minutes).
DEFAULT_TIMEOUT = 1800.0
#: Tries per request when the server cannot be reached or says it is busy.
DEFAULT_TRIES = 3
#: Statuses worth trying again: rate limits and gateways between the client and a
#: restarting server.
_RETRY_STATUSES = {408, 429, 502, 503, 504}
#: Characters of a server's error text quoted in a message.
_QUOTED = 200


class RemoteError(LossmapError):
    """A model server refused a request or answered in a way lossmap cannot use."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered with one


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
        context = ssl.create_default_context()  # verifies certificates and host names
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirects()
        )

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
            _check_key_transport(self.root)
            headers["Authorization"] = f"Bearer {key}"
        limit = timeout or self.timeout
        delay = self.backoff
        tries = max(self.tries, 1)
        for attempt in range(1, tries + 1):
            last = attempt == tries
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            # Each failure either raises or falls through to the one backoff below.
            try:
                with self._opener.open(request, timeout=limit) as response:
                    body = response.read()
                return json.loads(body.decode("utf-8"))
            except urllib.error.HTTPError as err:
                if last or err.code not in _RETRY_STATUSES:
                    raise _http_error(url, err) from None
            except urllib.error.URLError as err:  # before the request was sent
                reason = err.reason
                if isinstance(reason, ssl.SSLError):
                    raise RemoteError(f"{url}: TLS failed: {reason}") from None
                if last:
                    what = "timed out connecting" if isinstance(reason, TimeoutError) else reason
                    raise RemoteUnavailable(
                        f"cannot reach the model server at {self.root} ({what}; tried {attempt}x)"
                    ) from None
            except TimeoutError:  # sent, and no answer in time: never sent again
                raise RemoteError(
                    f"{url}: no answer within {limit:.0f} s (a slow server: allow more with"
                    " ?timeout=SECONDS in the model spec, or use a smaller --window)"
                ) from None
            except (OSError, http.client.HTTPException) as err:  # reset, or killed mid-answer
                if last:
                    raise RemoteUnavailable(
                        f"cannot reach the model server at {self.root}"
                        f" ({type(err).__name__}: {err}; tried {attempt}x)"
                    ) from None
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RemoteError(f"{url}: the answer is not JSON") from None
            self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects become errors (:meth:`HttpClient._call` names the target)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913
        return None


def _check_key_transport(root: str) -> None:
    """Refuse to send the API key in clear text to another machine."""
    parts = urllib.parse.urlsplit(root)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise RemoteError(
            f"{root}: {API_KEY_ENV} is set, and this address is plain http to another machine"
            " (the key would cross the network in clear text): use https"
        )


def _http_error(url: str, err: urllib.error.HTTPError) -> RemoteError:
    """The error for an HTTP error answer: a redirect (refused), missing or wrong
    credentials, a busy or restarting server (:class:`RemoteUnavailable`), a refusal."""
    if 300 <= err.code < 400:
        target = err.headers.get("Location", "?")
        return RemoteError(
            f"{url}: HTTP {err.code}, redirected to {target}: lossmap does not follow"
            " redirects (they could carry the API key elsewhere); use the final address",
            err.code,
        )
    detail = _error_text(err)
    if err.code in (401, 403):
        hint = f" (set {API_KEY_ENV} to the server's API key)"
        return RemoteError(f"{url}: HTTP {err.code}{detail}{hint}", err.code)
    kind = RemoteUnavailable if err.code in _RETRY_STATUSES else RemoteError
    return kind(f"{url}: HTTP {err.code}{detail}", err.code)


def _error_text(err: urllib.error.HTTPError) -> str:
    """': <the server's message>' from an error answer's body, cut short, or ''."""
    try:
        body = err.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
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
