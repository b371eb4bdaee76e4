"""mkdocs hook: the nav of mkdocs.yml, less the pages not (yet) under docs/, plus any page under
docs/ it does not list (appended by title). So a page added by another branch shows up without
editing the nav, and a listed page that is not there does not break `mkdocs build --strict`."""
from __future__ import annotations

from pathlib import Path


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("_", " ").capitalize()


def on_config(config):  # noqa: ANN001, ANN201 - mkdocs' hook signature
    docs = Path(config["docs_dir"])
    nav, listed = [], set()
    for entry in config["nav"] or []:
        (title, page), = entry.items()
        if (docs / page).is_file():
            nav.append({title: page})
            listed.add(page)
    for path in sorted(docs.glob("*.md")):
        if path.name not in listed:
            nav.append({_title(path): path.name})
    config["nav"] = nav
    return config
