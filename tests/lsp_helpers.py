"""Helpers for driving ``lossmap serve`` with pytest-lsp."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lossmap", "serve"])
SCORES_READY = "lossmap/scoresReady"


def capabilities(kind: str) -> types.ClientCapabilities:
    """A client's capabilities. ``vscode``: pytest-lsp's VS Code 1.65 record brought up to what
    vscode-languageclient 11 sends (pull diagnostics with refresh, utf-16 only)."""
    if kind != "vscode":
        return client_capabilities(kind)
    caps = client_capabilities("visual-studio-code")
    caps.text_document.diagnostic = types.DiagnosticClientCapabilities(
        dynamic_registration=True, related_document_support=False
    )
    caps.workspace.diagnostics = types.DiagnosticWorkspaceClientCapabilities(refresh_support=True)
    caps.general.position_encodings = [types.PositionEncodingKind.Utf16]
    return caps


async def start(client: LanguageClient, kind: str, options: dict) -> None:
    """Initialize with a real client's capabilities and record scoresReady notifications."""
    client.scores_ready = []  # type: ignore[attr-defined]
    client.token_refreshes = 0  # type: ignore[attr-defined]
    client.two_sided_ready = []  # type: ignore[attr-defined]

    @client.feature(SCORES_READY)
    def _ready(ls, params):
        client.scores_ready.append(params)

    @client.feature("lossmap/twoSidedReady")
    def _two_sided(ls, params):
        client.two_sided_ready.append(params)

    # Requests real editors answer and pytest-lsp's client does not.
    @client.feature(types.WORKSPACE_SEMANTIC_TOKENS_REFRESH)
    def _refresh(ls, params):
        client.token_refreshes += 1

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def _register(ls, params):
        return None

    await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(kind),
            initialization_options=options,
            root_uri=Path.cwd().as_uri(),
        )
    )


async def wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; the model may still be loading or scoring."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def ready_versions(client: LanguageClient, uri: str) -> list[int]:
    """Versions of ``uri`` with complete (not local-first partial) results."""
    return [
        _get(p, "version")
        for p in client.scores_ready
        if _get(p, "uri") == uri and not _opt(p, "partial")
    ]


def _opt(params, key):
    return params.get(key) if isinstance(params, dict) else getattr(params, key, None)


def _get(params, key):
    return params[key] if isinstance(params, dict) else getattr(params, key)


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


async def hover_at(
    client: LanguageClient, uri: str, line: int, character: int
) -> types.Hover | None:
    """The server's hover at a position of ``uri``."""
    return await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
        )
    )


def decode_tokens(data: list[int]) -> list[tuple[int, int, int, int, int]]:
    """(line, start, length, type, modifiers) from the LSP integer encoding."""
    out, line, char = [], 0, 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, mods = data[i : i + 5]
        line += dl
        char = char + dc if dl == 0 else dc
        out.append((line, char, length, kind, mods))
    return out


def units_slice(line: str, start: int, length: int, encoding: str) -> str:
    """The part of ``line`` at ``start`` with ``length`` code units of ``encoding``."""
    if encoding == "utf-8":
        return line.encode()[start : start + length].decode()
    if encoding == "utf-16":
        return line.encode("utf-16-le")[2 * start : 2 * (start + length)].decode("utf-16-le")
    return line[start : start + length]
