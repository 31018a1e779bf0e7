"""A model served over HTTP by an inference engine (vLLM, llama-cpp-python's server).

Spec: ``http(s)://host:port/v1#model-name``, with optional query settings before the ``#``:
``tokenizer=SPEC`` (the local tokenizer that matches the served model; default ``default``,
the Qwen2.5-Coder tokenizer shared by all its sizes), ``context=N`` (the server's context
length, when it does not say), ``engine=vllm|llama-cpp-python`` (skip detection). Example:
``http://gpu-box:8000/v1?tokenizer=Qwen/Qwen2.5-Coder-7B#Qwen/Qwen2.5-Coder-7B``.

lossmap tokenizes locally (it needs character offsets) and sends token ids where the
engine takes them (vLLM); the server's tokenizer is checked against the local one when
connecting, and every echoed prompt again (llama-cpp-python, which takes text only). An
engine answers, for each prompt position, the log-probability of the token there, its
rank where the engine knows it, and the top-k alternatives (:class:`PromptLogprob`); the
scoring stage turns those into lossmap's numbers.

Engines:

- **vLLM** (``/v1/completions`` with ``prompt_logprobs``: ids, ranks; several prompts per
  request; ``/tokenize`` for the check, ``/v1/models`` for the context length).
- **llama-cpp-python's server** (``/v1/completions`` with ``echo`` and ``logprobs``; start
  it with ``--logits_all true``). Its echoed log-probabilities line up with the prompt
  only when the prompt starts with the model's BOS token, so every prompt is sent with one
  (a window or fill-in-the-middle prompt then sees one more token than it would locally),
  the first token after it comes back without numbers, and alternatives come back as text
  (mapped to ids through the local vocabulary).
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import ModelSpecError
from .http_client import HttpClient, RemoteError, RemoteUnavailable

SCHEMES = ("http://", "https://")
ENGINES = ("vllm", "llama-cpp-python")
#: Alternatives asked for per position: more than the top-k shown, so that the entropy
#: estimate and the whitespace-insensitive classes see most of the probability mass.
#: vLLM refuses more than its ``--max-logprobs`` (20 by default).
REMOTE_TOP_K = 20
#: Texts whose tokens must come out alike from the server and the local tokenizer.
_PROBE_TEXTS = (
    "def f(x):\n    return x  # é\n",
    'fn main() {\n\tprintln!("{}", 1 + 2);\r\n}\n',
    "SELECT name FROM users WHERE id = 42; -- π ≈ 3.14159 😀\n",
    "    if (a != b && c >= d) { return null; }\n\n\n",
)


def is_remote(spec: str) -> bool:
    """Whether ``spec`` names a model server (an http(s) URL)."""
    return spec.strip().lower().startswith(SCHEMES)


@dataclass(frozen=True)
class RemoteSpec:
    """A parsed remote model spec."""

    url: str  # the OpenAI-style base, e.g. http://host:8000/v1
    model: str | None  # the server's name for the model (None: the first it lists)
    tokenizer: str  # a local model spec whose tokenizer matches the served model
    context: int | None  # the server's context length, when given
    engine: str | None  # forced engine, or None: detect
    timeout: float | None = None  # seconds a request may take (None: the client's default)

    @property
    def root(self) -> str:
        """The server's root (the base without a trailing ``/v1``): non-OpenAI routes."""
        return self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url


def parse_remote_spec(spec: str) -> RemoteSpec:
    """Parse ``http(s)://host:port/v1[?settings]#model``; raise :class:`ModelSpecError`."""
    parts = urllib.parse.urlsplit(spec.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelSpecError(f"model server '{spec}': expected http(s)://host:port/v1#model")
    if parts.username or parts.password:
        raise ModelSpecError(
            f"model server '{parts.hostname}': no credentials in the URL; set LOSSMAP_API_KEY"
        )
    try:
        settings = dict(urllib.parse.parse_qsl(parts.query, strict_parsing=bool(parts.query)))
    except ValueError:
        raise ModelSpecError(f"model server '{spec}': bad settings '{parts.query}'") from None
    unknown = sorted(set(settings) - {"tokenizer", "context", "engine", "timeout"})
    if unknown:
        raise ModelSpecError(
            f"model server '{spec}': unknown setting {unknown[0]!r}"
            " (tokenizer, context, engine, timeout)"
        )
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ModelSpecError(f"model server '{spec}': bad port") from None
    timeout = settings.get("timeout")
    if timeout is not None and (not timeout.isdigit() or int(timeout) < 1):
        raise ModelSpecError(f"model server '{spec}': timeout must be a number of seconds")
    context = settings.get("context")
    if context is not None and (not context.isdigit() or int(context) < 16):
        raise ModelSpecError(f"model server '{spec}': context must be a number of tokens")
    engine = settings.get("engine")
    if engine is not None and engine not in ENGINES:
        raise ModelSpecError(f"model server '{spec}': engine must be one of {', '.join(ENGINES)}")
    path = parts.path.rstrip("/") or "/v1"
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return RemoteSpec(
        url=url,
        model=urllib.parse.unquote(parts.fragment) or None,
        tokenizer=settings.get("tokenizer", "default"),
        context=int(context) if context else None,
        engine=engine,
        timeout=float(timeout) if timeout else None,
    )


class PromptLogprob(NamedTuple):
    """What an engine says of one prompt token (natural logs)."""

    logprob: float  # log p(the token that is there)
    rank: int | None  # 1 = the model's first choice; None: not known (past the top-k)
    top: list[tuple[int, float]]  # (token id, log p), likeliest first


@dataclass
class RemoteModel:
    """A connection to one served model; what ``LoadedModel.remote`` holds."""

    spec: RemoteSpec
    engine: str
    model: str
    context_length: int
    client: HttpClient
    bos_id: int | None
    tokenizer: Any = field(repr=False)
    #: "same tokens" when the server's tokenizer was checked against the local one.
    tokenizer_check: str = "not checked"
    #: llama-cpp-python: the server puts the model's BOS before every text prompt itself
    #: (GGUFs whose ``add_bos_token`` is true); lossmap then sends none of its own.
    server_adds_bos: bool = False
    _by_text: dict[str, int] | None = field(default=None, repr=False)
    _specials: set[int] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return self.spec.url

    # -- the two calls scoring makes ----------------------------------------------------
    def prompt_logprobs(self, prompts: list[list[int]], k: int) -> list[list[PromptLogprob | None]]:
        """Per prompt, per position: the engine's numbers for the token there (None for
        positions it gives none for: the first, and with llama-cpp-python the one after
        its BOS)."""
        if not prompts:
            return []
        if self.engine == "vllm":
            return self._vllm_logprobs(prompts, k)
        return [self._llama_logprobs(p, k) for p in prompts]

    def complete(self, prompt: list[int], max_tokens: int, stop: list[str]) -> str:
        """Greedy continuation of ``prompt`` (at most ``max_tokens`` tokens) as text."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stop": stop,
        }
        if self.engine == "vllm":
            body["prompt"] = prompt
        else:
            body["prompt"] = self._text(prompt)
            body["top_k"] = 1
        return str(_first_choice(self.client.post("completions", body)).get("text") or "")

    # -- vLLM ---------------------------------------------------------------------------
    def _vllm_logprobs(self, prompts: list[list[int]], k: int):
        body = {
            "model": self.model,
            "prompt": prompts,
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": k,
        }
        answer = self.client.post("completions", body)
        choices = sorted(_choices(answer), key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise RemoteError(f"{self.address}: {len(choices)} answers to {len(prompts)} prompts")
        out = []
        for prompt, choice in zip(prompts, choices, strict=True):
            entries = choice.get("prompt_logprobs")
            if not isinstance(entries, list) or len(entries) < len(prompt):
                raise RemoteError(
                    f"{self.address}: no prompt log-probabilities in the answer"
                    " (is this vLLM with prompt_logprobs?)"
                )
            out.append([_vllm_entry(e, t, k) for e, t in zip(entries, prompt, strict=False)])
        return out

    # -- llama-cpp-python ---------------------------------------------------------------
    def _llama_logprobs(self, prompt: list[int], k: int) -> list[PromptLogprob | None]:
        lead = 0 if prompt[:1] == [self.bos_id] else 1
        sent = [self.bos_id, *prompt] if lead else list(prompt)
        body = {
            "model": self.model,
            # The server's own BOS, where it adds one, is the one the echo drops.
            "prompt": self._text(sent[1:] if self.server_adds_bos else sent),
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": k,
        }
        logprobs = _first_choice(self.client.post("completions", body)).get("logprobs")
        if not isinstance(logprobs, dict) or not isinstance(logprobs.get("tokens"), list):
            raise RemoteError(
                f"{self.address}: no log-probabilities in the answer"
                " (start llama-cpp-python's server with --logits_all true)"
            )
        tokens, values = logprobs["tokens"], logprobs.get("token_logprobs") or []
        tops = logprobs.get("top_logprobs") or []
        # The BOS is left out of the echo: entry j is sent[j + 1]; one generated token may
        # follow the prompt's.
        if len(tokens) < len(sent) - 1 or len(values) < len(sent) - 1:
            self._mismatch(sent, tokens)
        out: list[PromptLogprob | None] = [None] * len(prompt)
        by_text = self._vocab_by_text()
        for j in range(len(sent) - 1):
            token = sent[j + 1]
            if not self._same_piece(token, tokens[j]):
                self._mismatch(sent, tokens)
            value, top = values[j], tops[j] if j < len(tops) else None
            if value is None or not isinstance(top, dict):
                continue
            value = float(value)
            # The server's own top-k values (the actual token's entry is added to them):
            # the rank is known when the actual token is not below the k-th of them.
            raw = sorted((float(v) for v in top.values()), reverse=True)
            # (Fewer than k values: alternatives shared a text; the rank is then unknown.)
            rank = None
            if len(raw) >= k and value >= raw[k - 1]:
                rank = 1 + sum(v > value for v in raw)
            alternatives = {token: value}
            for text, lp in top.items():
                tid = by_text.get(text)
                if tid is not None and tid not in alternatives:
                    alternatives[tid] = float(lp)
            ranked = sorted(alternatives.items(), key=lambda kv: -kv[1])
            ranked = [(t, lp) for t, lp in ranked if t != token or rank is not None][:k]
            out[j + 1 - lead] = PromptLogprob(value, rank, ranked)
        return out

    def _same_piece(self, token: int, echoed: object) -> bool:
        """Whether the server's text for a prompt token can be ``token``'s. Control tokens
        (the FIM markers) echo as nothing, and a piece of a character as part of one."""
        if token in self._special_ids():
            return True
        piece = self._text([token])
        return "\ufffd" in piece or echoed == piece

    def _special_ids(self) -> set[int]:
        if self._specials is None:
            added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
            self._specials = set(self.tokenizer.all_special_ids) | set(added)
        return self._specials

    def _mismatch(self, sent: list[int], tokens: list) -> None:
        """Raise: the server read the prompt as other tokens than lossmap's."""
        n = min(len(sent) - 1, len(tokens))
        at = next((j for j in range(n) if not self._same_piece(sent[j + 1], tokens[j])), n)
        raise RemoteError(
            f"{self.address}: the server tokenized the text differently from lossmap's"
            f" tokenizer ('{self.spec.tokenizer}') at token {at + 1} of {len(sent) - 1};"
            " text that spells a special token (<|endoftext|>) does this, as does a"
            " tokenizer that is not the served model's (set ?tokenizer=)"
        )

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, clean_up_tokenization_spaces=False)

    def _vocab_by_text(self) -> dict[str, int]:
        """Vocabulary id by the text the server writes for it (decodable entries only)."""
        if self._by_text is None:
            table: dict[str, int] = {}
            for tid in range(len(self.tokenizer)):
                text = self._text([tid])
                if text and "\ufffd" not in text:
                    table.setdefault(text, tid)
            self._by_text = table
        return self._by_text


def _vllm_entry(entry: Any, token: int, k: int) -> PromptLogprob | None:
    if not isinstance(entry, dict):
        return None
    actual = entry.get(str(token))
    if not isinstance(actual, dict):
        return None
    top = sorted(
        (
            (int(tid), float(v["logprob"]), int(v.get("rank") or 10**9))
            for tid, v in entry.items()
            if isinstance(v, dict) and math.isfinite(float(v.get("logprob", -math.inf)))
        ),
        key=lambda x: (x[2], -x[1]),
    )
    rank = actual.get("rank")
    return PromptLogprob(
        float(actual["logprob"]), int(rank) if rank else None, [(t, lp) for t, lp, _ in top[:k]]
    )


def _choices(answer: Any) -> list[dict]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices:
        raise RemoteError("the model server's answer holds no choices")
    return [c for c in choices if isinstance(c, dict)]


def _first_choice(answer: Any) -> dict:
    return _choices(answer)[0]


# -- connecting ---------------------------------------------------------------------------
def connect(spec: RemoteSpec, tokenizer: Any, client: HttpClient | None = None) -> RemoteModel:
    """Reach the server, find its engine, model and context length, and check that it
    tokenizes like ``tokenizer``; raise :class:`RemoteError` (or ``RemoteUnavailable``)."""
    if client is None:
        client = HttpClient(spec.url)
        if spec.timeout is not None:
            client.timeout = spec.timeout
    engine = spec.engine or _detect_engine(spec, client)
    models = _served_models(client)
    model = spec.model or (models[0]["id"] if models else None)
    if model is None:
        raise RemoteError(f"{spec.url}: the server lists no model; name one after '#'")
    listed = {m.get("id") for m in models}
    if models and model not in listed:
        names = ", ".join(sorted(str(n) for n in listed))
        raise RemoteError(f"{spec.url}: no model '{model}' on the server (it serves {names})")
    context = spec.context
    if context is None:
        info = next((m for m in models if m.get("id") == model), {})
        context = int(info.get("max_model_len") or 0) or (2048 if engine != "vllm" else 4096)
    bos = tokenizer.bos_token_id
    if bos is None and engine == "llama-cpp-python":
        raise RemoteError(
            f"{spec.url}: llama-cpp-python's server lines its log-probabilities up with the"
            " prompt only after a BOS token, and this tokenizer has none"
        )
    remote = RemoteModel(
        spec=spec,
        engine=engine,
        model=model,
        # Positions kept free: the token every request generates, and with llama-cpp-python
        # the BOS sent before a prompt that does not start with one.
        context_length=context - (2 if engine == "llama-cpp-python" else 1),
        client=client,
        bos_id=bos,
        tokenizer=tokenizer,
    )
    remote.tokenizer_check = _check_tokenizer(remote)
    return remote


def _detect_engine(spec: RemoteSpec, client: HttpClient) -> str:
    """The engine behind ``spec``'s address: vLLM answers ``/version``, llama-cpp-python's
    server ``/extras/tokenize``. An unreachable server or a refused key is raised at once."""
    root = HttpClient(spec.root, timeout=client.timeout, tries=client.tries, sleep=client.sleep)
    if _answers(lambda: root.get("version"), lambda v: isinstance(v, dict) and "version" in v):
        return "vllm"
    if _answers(lambda: root.post("extras/tokenize", {"input": "x"}), lambda _v: True):
        return "llama-cpp-python"
    raise RemoteError(
        f"{spec.url}: not a server lossmap knows (vLLM, llama-cpp-python's server);"
        " name the engine with ?engine="
    )


def _answers(call: Callable[[], Any], looks_right: Callable[[Any], bool]) -> bool:
    """Whether ``call`` succeeds with an answer that ``looks_right``; other HTTP errors than
    401/403 (and an unreachable server) mean no, those propagate."""
    try:
        return looks_right(call())
    except RemoteUnavailable:
        raise
    except RemoteError as err:
        if err.status in (401, 403):
            raise
        return False


def _served_models(client: HttpClient) -> list[dict]:
    answer = client.get("models")
    data = answer.get("data") if isinstance(answer, dict) else None
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def _check_tokenizer(remote: RemoteModel) -> str:
    """'same tokens' when the server tokenizes the probe texts as the local tokenizer does;
    raise :class:`RemoteError` naming the first difference otherwise."""
    root = HttpClient(remote.spec.root, timeout=remote.client.timeout, tries=remote.client.tries)
    for text in _PROBE_TEXTS:
        local = remote.tokenizer(text, add_special_tokens=False)["input_ids"]
        if remote.engine == "vllm":
            body = {"model": remote.model, "prompt": text, "add_special_tokens": False}
            served = root.post("tokenize", body).get("tokens")
        else:
            served = root.post("extras/tokenize", {"input": text}).get("tokens")
        if isinstance(served, list) and served[:1] == [remote.bos_id] and local[:1] != served[:1]:
            served = served[1:]  # a llama.cpp GGUF whose tokenizer adds its BOS itself
            remote.server_adds_bos = remote.engine == "llama-cpp-python"
        if served != local:
            raise RemoteError(
                f"{remote.spec.url}: model '{remote.model}' tokenizes differently from the"
                f" local tokenizer '{remote.spec.tokenizer}' (on {text[:24]!r}): name the"
                " served model's tokenizer with ?tokenizer=<hub id or directory>"
            )
    return "same tokens"
