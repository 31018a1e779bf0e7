"""Run llama-cpp-python's server (``python -m llama_cpp.server``) with llama.cpp's repacked
CPU weight layouts ("extra buffer types") turned off.

llama-cpp-python 0.3.36 exposes no server option for it; on CPUs with AMX its repacked path
crashed (SIGSEGV) on the first decode on this project's machines (benchmarks/RESULTS.md, "CPU
runtimes"). Everything else is the stock server: arguments pass through unchanged.
"""

import llama_cpp
from llama_cpp.server.__main__ import main

_default_params = llama_cpp.llama_model_default_params


def _params_without_repacking():
    params = _default_params()
    params.use_extra_bufts = False
    return params


llama_cpp.llama_model_default_params = _params_without_repacking

if __name__ == "__main__":
    main()
