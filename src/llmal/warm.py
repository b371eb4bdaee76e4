"""The warm worker: load once, run many, while every AL run stays a Snakemake job of its own.

A local Snakemake session (not a dry run, not a cluster) starts one worker process (`start`, from
the Snakefile's `onstart`). Each al_run job's script then hands its run to the worker (`delegate`)
instead of importing pandas and scikit-learn and reading the item table, split, annotation tables
and features itself. The worker reads each input file once while it is unchanged
(llmal.runner.RunInputs), then forks a child per run: the child runs exactly the code a job
would run (llmal.runner.run_al), on copy-on-write views of what the worker holds, writes the run's
files and log, and reports back. A run never changes what the next one sees (a child's writes
stay in the child), and two runs of one job slot cannot share anything but read-only inputs.

Snakemake keeps everything it does without the worker: each run's run.json is the output of its
own job (rerun triggers, --forcerun, naming one file to rerun one run, incomplete-file cleanup,
logs). When there is no worker (a cluster job, a dry run, `warm_worker: false`, a fine-tuning
recipe whose torch must not be forked) the job runs itself as before.

The worker exits when Snakemake does (`stop`, from onsuccess/onerror) or, if Snakemake was
killed, when its parent process is gone.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from llmal.workflow import log_executors, logged

ENV = "LLMAL_WARM_WORKER"       # the socket of this session's worker (inherited by its jobs)
STARTUP_SECONDS = 120.0         # how long a job waits for a worker still importing
# what Snakemake sets for a job from its `threads` (snakemake.shell): the linear-algebra libraries
# read them once, at import, and their thread count changes a float sum's order, so the worker
# starts with a linear-head job's values and serves only jobs that have the same
THREAD_VARS = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
WORKER_THREADS = 1              # llmal.config.cluster.al_threads of a linear head
TMP_VARS = ("TMPDIR", "TMP", "TEMPDIR", "TEMP")


def eligible(spec: dict[str, Any]) -> bool:
    """Runs the worker may fork: no fine-tuning and no in-process vLLM (torch and CUDA must not
    be forked, and a GPU job is placed by its own resources)."""
    lazy_vllm = spec.get("annotation") == "lazy" and any(
        a.get("kind") == "vllm" for a in (spec.get("annotators") or {}).values())
    return (spec.get("recipe_spec") or {}).get("kind") != "finetune" and not lazy_vllm and \
        (spec.get("encoder_spec") or {}).get("kind") != "transformer"


def job_env() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in THREAD_VARS + TMP_VARS}


# --- the Snakemake side -----------------------------------------------------------------------
def start(cwd: str | Path, runs: int | None = None) -> subprocess.Popen | None:
    """Start this session's worker; its socket goes into the environment the jobs inherit.
    `runs`: the AL runs the session will hand over; once it has run them all, the worker ends and
    frees its memory before the aggregate job reads every run (None: it ends with the session)."""
    folder = tempfile.mkdtemp(prefix="llmal-warm-")
    path = os.path.join(folder, "worker.sock")
    env = {**os.environ, **{k: str(WORKER_THREADS) for k in THREAD_VARS}}
    proc = subprocess.Popen([sys.executable, "-m", "llmal.warm", path, str(os.getpid()),
                             *([str(runs)] if runs is not None else [])], cwd=str(cwd),
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(folder, "worker.log"), "w"))
    os.environ[ENV] = path
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    os.environ.pop(ENV, None)
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- the job side -----------------------------------------------------------------------------
def delegate(request: dict[str, Any]) -> bool:
    """Have this session's worker run the AL run `request` describes (spec, dataset, seed,
    inputs, outputs, threads, log). False when there is no worker for it (the job runs it
    itself); raises when the run failed (its log says why)."""
    path = os.environ.get(ENV)
    if not path or not eligible(request["spec"]):
        return False
    sock = _connect(path)
    if sock is None:
        return False
    with sock:
        sock.sendall(json.dumps({**request, "env": job_env()}).encode() + b"\n")
        reply = _read_line(sock)
    if not reply:
        raise RuntimeError(f"the warm worker ({path}) ended without finishing the run; see {request['log']}")
    answer = json.loads(reply)
    if answer.get("declined"):   # other threads than the worker's, or inputs it could not read
        return False
    if not answer.get("ok"):
        raise RuntimeError(f"AL run failed in the warm worker: {answer.get('error')}; see {request['log']}")
    return True


def _connect(path: str) -> socket.socket | None:
    """The worker's socket, once it listens (it may still be importing); None without one."""
    deadline = time.monotonic() + STARTUP_SECONDS
    folder = os.path.dirname(path)
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            # no folder: the session's worker was stopped; no socket after the deadline: it failed
            if not os.path.isdir(folder) or time.monotonic() > deadline or \
                    os.path.exists(os.path.join(folder, "failed")):
                return None
            time.sleep(0.1)


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.strip()


# --- the worker -------------------------------------------------------------------------------
def serve(path: str, parent: int, runs: int | None = None) -> None:
    """Accept runs until Snakemake (`parent`) is gone or stops us, or `runs` runs are done; one
    forked child per run. A job that comes later finds no worker and runs itself."""
    # deferred: pandas, scikit-learn and llmal's engine load here, in the worker, never in a job
    # that only hands its run over (nor in Snakemake's planning, which imports this module)
    from llmal.runner import RunInputs, run_al

    cache = RunInputs()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
    except OSError:
        Path(path).with_name("failed").touch()
        raise
    server.listen(64)
    server.settimeout(1.0)
    children: set[int] = set()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = 0
    try:
        while os.getppid() == parent:
            _reap(children)
            if runs is not None and started >= runs and not children:
                break
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            conn.settimeout(None)
            try:
                request = json.loads(_read_line(conn) or b"{}")
            except (OSError, ValueError):   # a job that went away before it asked
                conn.close()
                continue
            env = request.get("env") or {}
            if any(env.get(k) != os.environ.get(k) for k in THREAD_VARS):
                _reply(conn, {"ok": False, "declined": "threads"})
                continue
            try:
                spec = request["spec"]
                before = cache.seconds
                cache.preload(spec, request["inputs"])
                read_seconds = cache.seconds - before
            except Exception as e:   # an unreadable input: the job reads it itself and says why
                _reply(conn, {"ok": False, "declined": f"{type(e).__name__}: {e}"})
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                _job_env(env)
                _child(conn, lambda: run_al(spec=spec, dataset=request["dataset"], seed=int(request["seed"]),
                                          inputs=request["inputs"], outputs=request["outputs"],
                                          threads=request.get("threads"), loaded=cache),
                       request["log"], cache, read_seconds)   # never returns
            children.add(pid)
            started += 1
            conn.close()
    finally:
        server.close()
        for pid in children:   # Snakemake is gone: so are its runs
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _reap(children)
        try:
            os.unlink(path)
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


def _child(conn: socket.socket, run: Callable[[], Any], log: str, cache: Any, read_seconds: float) -> None:
    """One run in a forked child: the al_run script's body, then exit with its status."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    status: dict[str, Any] = {"ok": True}
    try:
        cache.worker_read_seconds = read_seconds
        with logged(log):
            log_executors()
            run()
    except BaseException as e:   # the traceback is in the run's log (logged)
        status = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    try:
        _reply(conn, status)
    finally:
        os._exit(0 if status["ok"] else 1)


def _reply(conn: socket.socket, answer: dict[str, Any]) -> None:
    """Answer a job and hang up; a job that went away (killed) gets nothing."""
    try:
        conn.sendall(json.dumps(answer).encode() + b"\n")
    except OSError:
        pass
    finally:
        conn.close()


def _job_env(env: dict[str, str | None]) -> None:
    """The job's temporary directory (Snakemake's `tmpdir` resource) in the forked child."""
    for k in TMP_VARS:
        if env.get(k) is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = str(env[k])
    tempfile.tempdir = None   # tempfile reads the variables again


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
