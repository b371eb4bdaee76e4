"""The docs a newcomer reads: README stays short and keeps CI's test command, the reference under
docs/ builds with `mkdocs build --strict` (no broken link or anchor), and names every config key."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from llmal.config.keys import config_keys, key_pattern, keys_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def test_readme_is_short_and_keeps_the_ci_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) < 12_000, f"README.md has {len(readme):,} characters"
    lines = readme.splitlines()
    marker = lines.index("<!-- test-command -->")
    assert lines[marker + 1:marker + 4] == ["```bash", "bin/test -q", "```"]
    for command in ("llmal init", "llmal check --configfile", "snakemake --cores"):
        assert command in readme
    assert "| `config/config.yaml` |" in readme            # the shipped grids table
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):   # every link into docs/ is a page
        assert (ROOT / link).is_file(), link


def test_every_schema_key_appears_in_docs_by_its_dotted_name():
    keys = config_keys()
    assert len(keys) > 200 and "annotators.<name>.demonstrations.k" in {k.dotted for k in keys}
    text = _docs_text()
    missing = [k.dotted for k in keys if not key_pattern(k.dotted).search(text)]
    assert missing == []


def test_key_reference_page_is_generated_from_the_current_schema():
    assert (DOCS / "keys.md").read_text(encoding="utf-8") == keys_markdown(), (
        "docs/keys.md is stale: python -m llmal.config.keys > docs/keys.md")


def test_key_pattern_accepts_real_names_for_placeholders():
    pattern = key_pattern("conditions.<name>.training.reweight.meta_size")
    assert pattern.search("set `conditions.llm_al.training.reweight.meta_size` to 64")
    assert pattern.search("conditions.<condition>.training.reweight.meta_size")
    assert not pattern.search("conditions.llm_al.training.reweight.meta_sizes")
    assert not key_pattern("al.batch").search("conditions.x.al.batch_size")


def test_mkdocs_build_strict(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    built = {p.parent.name for p in (tmp_path / "site").glob("*/index.html")}
    expected = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    assert expected <= built, expected - built
