"""Stage 2, scoring: token ids and spans, the LM head's per-token
statistics, sliding windows, KV caches, whole and incremental scoring of documents.
Imports models only; never syntax or verdicts.
"""
