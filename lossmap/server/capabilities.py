"""What the client can do, resolved once at ``initialize`` from its capabilities.

The server reads these fields instead of walking ``ClientCapabilities`` on every publication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsprotocol import types


@dataclass(frozen=True)
class ClientFeatures:
    """The client capabilities lossmap acts on (all off until ``initialize``)."""

    #: Pull diagnostics, and the client can be told to pull again. A client that pulls but
    #: cannot be refreshed (Neovim 0.11) would never see results that land after its pull,
    #: so it gets pushed diagnostics instead.
    pull_diagnostics: bool = False
    #: ``workspace/semanticTokens/refresh``: highlights are re-requested when results land.
    semantic_tokens_refresh: bool = False
    #: Server-initiated ``$/progress`` (the model load shows one).
    work_done_progress: bool = False
    #: ``workspace/configuration``: the ``lossmap`` section is pulled at start and on change.
    configuration: bool = False
    #: Dynamic registration for ``workspace/didChangeConfiguration``.
    config_change_registration: bool = False
    #: The negotiated position encoding (pygls chose it from the client's list).
    position_encoding: str = types.PositionEncodingKind.Utf16

    @classmethod
    def resolve(
        cls, capabilities: types.ClientCapabilities | None, position_encoding: str | None
    ) -> ClientFeatures:
        def supports(path: str) -> bool:
            node: Any = capabilities
            for part in path.split("."):
                node = getattr(node, part, None)
                if node is None:
                    return False
            return bool(node)

        return cls(
            pull_diagnostics=supports("text_document.diagnostic")
            and supports("workspace.diagnostics.refresh_support"),
            semantic_tokens_refresh=supports("workspace.semantic_tokens.refresh_support"),
            work_done_progress=supports("window.work_done_progress"),
            configuration=supports("workspace.configuration"),
            config_change_registration=supports(
                "workspace.did_change_configuration.dynamic_registration"
            ),
            position_encoding=position_encoding or types.PositionEncodingKind.Utf16,
        )
