"""Download a public file once, verified by its sha256, into a cache directory.

The file is written to a temporary name next to the destination, its checksum compared, and only
then renamed into place, so an interrupted or tampered download never sits behind a valid name.
"""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from llmal.datasets.errors import DatasetError

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_verified(url: str, dest: str | Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Return `dest`, downloading `url` there first unless a file with the right checksum exists.

    Raises DatasetError naming the URL and both hashes when the download does not match.
    """
    dest = Path(dest)
    expected = sha256.lower()
    if dest.exists():
        actual = sha256_file(dest)
        if actual == expected:
            return dest
        logger.warning("%s: cached copy has sha256 %s, expected %s; downloading again",
                       dest, actual, expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    digest = hashlib.sha256()
    logger.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"cannot download {url}: {exc}. Without a network, download the file "
                           f"elsewhere and set dataset.path to your copy") from exc
    actual = digest.hexdigest()
    if actual != expected:
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; "
                           f"the download was discarded (nothing written to {dest})")
    tmp.replace(dest)
    return dest
