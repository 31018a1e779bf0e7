"""Stage 1, the models: specs, offline packages, the prepared-model
store, devices, loading, and the live and judge roles. Never imports scoring, syntax or
verdicts.
"""
