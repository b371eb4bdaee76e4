"""Headless Chromium for the report tests: Debian's `chromium`, installed as root with apt-get
where missing (as tests/slurm_cluster.py installs slurm-wlm)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio"]

# appended to a copy of the page: after load, what the page looks like, as JSON in the DOM
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 40)),
    scrollWidth: document.scrollingElement.scrollWidth,
    clientWidth: document.scrollingElement.clientWidth,
    scrollHeight: document.scrollingElement.scrollHeight,
  };
  const out = document.createElement("script");
  out.type = "application/json"; out.id = "llmal-probe"; out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


class ChromiumUnavailable(RuntimeError):
    """Chromium cannot be run here (the reason is the message)."""


def browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def ensure_chromium(timeout: int = 900) -> str:
    """The path of a chromium binary, installing Debian's package as root where it is missing."""
    found = browser()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ChromiumUnavailable("chromium missing, and no root apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode != 0:
            raise ChromiumUnavailable(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr[-1500:]}")
    found = browser()
    if not found:
        raise ChromiumUnavailable("installed chromium, but no chromium binary on PATH")
    return found


def probe(chromium: str, page: Path, work: Path, *, width: int = 1280, height: int = 900) -> dict:
    """Open a copy of `page` (with PROBE appended) at a `width` px viewport; what PROBE measured."""
    copy = work / f"probe-{page.name}"
    copy.write_text(page.read_text(encoding="utf-8") + PROBE, encoding="utf-8")
    res = subprocess.run([chromium, *FLAGS, f"--window-size={width},{height}", "--virtual-time-budget=10000",
                          "--dump-dom", copy.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'<script type="application/json" id="llmal-probe">([^<]*)</script>', res.stdout)
    assert found, f"no probe result (exit {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(found.group(1))


def screenshot(chromium: str, page: Path, out: Path, *, width: int = 1280, height: int = 2400) -> Path:
    subprocess.run([chromium, *FLAGS, f"--window-size={width},{height}", f"--screenshot={out}",
                    page.resolve().as_uri()], capture_output=True, text=True, timeout=180, check=True)
    return out
