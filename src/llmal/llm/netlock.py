"""A lock for files on network filesystems (NFS, Lustre), where POSIX file locks are unreliable.

`os.mkdir` is atomic on NFS and Lustre (the server decides who created the directory), so the
lock is a directory next to the file it guards: whoever creates it holds the lock, and writes
its host, pid and time inside. A holder that died leaves its directory behind: a lock older than
`stale_s` (transactions under it last milliseconds) whose holder is not a live process on this
host is broken, by renaming it away first so that two breakers never both succeed.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from pathlib import Path

HOST = socket.gethostname()


class LockTimeout(TimeoutError):
    pass


class DirLock:
    def __init__(self, path: str | Path, *, timeout_s: float = 120.0, stale_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.stale_s = stale_s
        self.held = False

    def _holder(self) -> tuple[str, int] | None:
        try:
            host, pid = (self.path / "owner").read_text().split()[:2]
            return host, int(pid)
        except (OSError, ValueError):
            return None

    def _stale(self) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        holder = self._holder()
        if holder and holder[0] == HOST:
            try:
                os.kill(holder[1], 0)
            except ProcessLookupError:
                return True          # its process on this host is gone
            except PermissionError:
                pass
        return age > self.stale_s

    def _break(self) -> None:
        trash = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, trash)
        except OSError:
            return                   # someone else broke (or released) it first
        shutil.rmtree(trash, ignore_errors=True)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        delay = 0.005
        while True:
            try:
                os.mkdir(self.path)
            except FileExistsError:
                if self._stale():
                    self._break()
                    continue
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{self.path}: held by {self._holder()} for over {self.timeout_s:.0f} s") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            (self.path / "owner").write_text(f"{HOST} {os.getpid()} {time.time()}\n")
            self.held = True
            return

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "DirLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
