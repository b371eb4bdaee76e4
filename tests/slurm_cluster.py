"""A real one-node SLURM for tests: munged, slurmctld and slurmd from Debian's slurm-wlm, with
fake GPUs (GRES bound to /dev/null and /dev/zero) so that GPU requests are scheduled.

Everything lives in one temporary directory (its own munge key and socket, slurm.conf, state,
logs, free ports): nothing in /etc is touched and the daemons are stopped by pid. Clients find
the config through SLURM_CONF; the SLURM plugin's job step drops every SLURM_* variable before
its nested `srun` (a real node reads /etc/slurm/slurm.conf), so `env["PATH"]` starts with a
directory whose `srun` sets SLURM_CONF again and runs the real one. Installs
slurm-wlm and munge with apt-get where they are missing and the process is root.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be started here (the reason is the message)."""


def ensure_installed(timeout: int = 900) -> None:
    """slurm-wlm and munge on PATH, installing them from Debian's packages as root if missing."""
    missing = [d for d in DAEMONS if not _which(d)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"{', '.join(missing)} missing and not root: cannot apt-get install slurm-wlm munge")
    if not shutil.which("apt-get"):
        raise SlurmUnavailable(f"{', '.join(missing)} missing and no apt-get to install slurm-wlm munge")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "slurm-wlm", "munge"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr[-1500:]}")
    still = [d for d in DAEMONS if not _which(d)]
    if still:
        raise SlurmUnavailable(f"installed slurm-wlm and munge, but {', '.join(still)} still missing")


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name)
                                       if p.exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SlurmCluster:
    root: Path
    cpus: int = 2
    gpus: int = 2
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf),
                "PATH": os.pathsep.join([str(self.root / "bin"), os.environ.get("PATH", "")])}

    @property
    def ctld_log(self) -> Path:
        return self.root / "log" / "slurmctld.log"

    def write_config(self) -> None:
        host = socket.gethostname().split(".")[0]
        for d in ("munge", "state", "spool", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.9)
        devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"][: self.gpus]
        r = self.root
        self.conf.write_text("\n".join([
            "ClusterName=llmaltest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={r}/munge/sock",
            "SlurmUser=root", "SlurmdUser=root",
            f"StateSaveLocation={r}/state", f"SlurmdSpoolDir={r}/spool",
            f"SlurmctldPidFile={r}/slurmctld.pid", f"SlurmdPidFile={r}/slurmd.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log", f"SlurmdLogFile={r}/log/slurmd.log",
            "SlurmctldDebug=info", "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            # no accounting: sacct exists but answers "accounting storage is disabled"
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "GresTypes=gpu", "MpiDefault=none", "ReturnToService=2", "MinJobAge=300",
            "SlurmctldTimeout=30", "SlurmdTimeout=30", "InactiveLimit=0", "KillWait=5",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={mem_mb} "
            f"Gres=gpu:fake:{len(devices)} State=UNKNOWN",
            f"PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP",
        ]) + "\n")
        (self.root / "bin").mkdir(exist_ok=True)
        srun = self.root / "bin" / "srun"
        srun.write_text(f"#!/bin/sh\nSLURM_CONF={self.conf} exec {_which('srun') or 'srun'} \"$@\"\n")
        srun.chmod(0o755)
        (self.root / "gres.conf").write_text(
            "".join(f"NodeName={host} Name=gpu Type=fake File={d}\n" for d in devices))

    def _run(self, *cmd: str, timeout: int = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, **self.env))

    def _start(self, name: str, cmd: list[str], pid_file: Path) -> None:
        res = self._run(*cmd)
        if res.returncode != 0:
            raise SlurmUnavailable(f"{name} did not start ({res.returncode}): {res.stderr[-1500:]}"
                                   f"{self._log_tail(name)}")
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text().strip():
                self.pids[name] = int(pid_file.read_text().split()[0])
                return
            time.sleep(0.1)
        raise SlurmUnavailable(f"{name} wrote no pid file {pid_file}{self._log_tail(name)}")

    def _log_tail(self, name: str) -> str:
        log = self.root / ("munge/munged.log" if name == "munged" else f"log/{name}.log")
        return f"\n{log}:\n{log.read_text()[-1500:]}" if log.exists() else ""

    def start(self) -> "SlurmCluster":
        ensure_installed()
        self.write_config()
        r = self.root
        try:
            self._start("munged", [_which("munged") or "munged", "--force", f"--socket={r}/munge/sock",
                                   f"--key-file={r}/munge/munge.key", f"--pid-file={r}/munge/munged.pid",
                                   f"--log-file={r}/munge/munged.log", f"--seed-file={r}/munge/seed"],
                        r / "munge" / "munged.pid")
            self._start("slurmctld", [_which("slurmctld") or "slurmctld", "-f", str(self.conf), "-c"],
                        r / "slurmctld.pid")
            self._start("slurmd", [_which("slurmd") or "slurmd", "-f", str(self.conf)], r / "slurmd.pid")
            self.wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        out = ""
        while time.time() < deadline:
            res = self._run("sinfo", "-h", "-o", "%t")
            out = res.stdout.strip() + res.stderr.strip()
            if res.returncode == 0 and out and all(s.startswith("idle") for s in out.split()):
                return
            time.sleep(0.5)
        raise SlurmUnavailable(f"the SLURM node never became idle (sinfo: {out!r}){self._log_tail('slurmd')}")

    def stop_controller(self) -> None:
        self._kill("slurmctld")

    def _kill(self, name: str) -> None:
        pid = self.pids.pop(name, None)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            self._kill(name)

    def job_ids(self) -> list[str]:
        """Every job the controller accepted (its log: `_slurm_rpc_submit_batch_job: JobId=N`)."""
        import re

        text = self.ctld_log.read_text() if self.ctld_log.exists() else ""
        return re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text)
