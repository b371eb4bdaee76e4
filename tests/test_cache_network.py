"""`cache_mode: network`: the response cache on a shared cluster filesystem (NFS, Lustre)."""
from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from llmal.llm.cache import ResponseCache
from llmal.llm.executors.base import ok_line
from llmal.llm.netlock import DirLock, LockTimeout

BACKEND = "openai http://127.0.0.1:1/v1"


def _writer(path: str, worker: int, n: int) -> None:
    cache = ResponseCache(path, mode="network")
    cache.register(f"w{worker}")
    for i in range(n):   # one transaction per line: the worst case for lock traffic
        cache.put(ok_line(f"w{worker}-{i}", {"choices": [{"message": {"content": str(i)}}]}), BACKEND)
    cache.close()


def test_network_mode_uses_a_rollback_journal_and_leaves_no_lock(tmp_path):
    path = tmp_path / "responses.sqlite"
    with ResponseCache(path, mode="network") as cache:
        assert cache.journal_mode() == "delete"
        cache.put(ok_line("a", {"x": 1}), BACKEND)
        assert set(cache.get_many(["a", "b"], BACKEND)) == {"a"}
    assert not (tmp_path / "responses.sqlite.lock").exists()
    assert not (tmp_path / "responses.sqlite-wal").exists()
    with ResponseCache(path) as local:           # the default stays WAL
        assert local.journal_mode() == "wal"
    with ResponseCache(path, mode="network") as cache:   # and a WAL file converts back
        assert cache.journal_mode() == "delete" and len(cache) == 1
    with pytest.raises(ValueError, match="cache_mode"):
        ResponseCache(path, mode="nfs")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "responses.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with ResponseCache(path, mode="network") as cache:
        assert len(cache) == 160 and cache.integrity_ok()
        got = cache.get_many([f"w{w}-{i}" for w in range(4) for i in range(40)], BACKEND)
        assert len(got) == 160
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM owners").fetchone()[0] == 4
    conn.close()


def test_a_live_holder_blocks_and_a_dead_one_is_broken(tmp_path):
    lock_path = tmp_path / "x.lock"
    held = DirLock(lock_path)
    held.acquire()
    code = ("import sys; from llmal.llm.netlock import DirLock, LockTimeout\n"
            f"l = DirLock({str(lock_path)!r}, timeout_s=0.5)\n"
            "try:\n l.acquire()\nexcept LockTimeout:\n sys.exit(3)\nsys.exit(0)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 3
    held.release()
    # a holder killed mid-transaction leaves its directory: its pid is gone, so it is broken
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path.mkdir()
    (lock_path / "owner").write_text(f"{os.uname().nodename} {dead.pid} {time.time()}\n")
    start = time.monotonic()
    with DirLock(lock_path, timeout_s=5):
        assert (lock_path / "owner").read_text().split()[1] == str(os.getpid())
    assert time.monotonic() - start < 2 and not lock_path.exists()
    # a holder on another host that stopped refreshing is broken after stale_s
    lock_path.mkdir()
    (lock_path / "owner").write_text("elsewhere 1 0\n")
    os.utime(lock_path, (time.time() - 120, time.time() - 120))
    with DirLock(lock_path, timeout_s=5, stale_s=60):
        pass
    with pytest.raises(LockTimeout):
        lock_path.mkdir()
        (lock_path / "owner").write_text("elsewhere 1 0\n")
        DirLock(lock_path, timeout_s=0.3, stale_s=60).acquire()
