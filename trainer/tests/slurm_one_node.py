"""A one-node Slurm cluster in a private folder, for tests (trainer/tests/test_slurm.py) and for trying
examples/slurm/ by hand on a workstation:

    sudo .venv/bin/python trainer/tests/slurm_one_node.py /tmp/slurm    # starts it, prints what to export, waits
    # (Ctrl-C stops the daemons)

It needs root: it installs Debian's slurmctld, slurmd, slurm-client and munge when they are missing, and starts
munged (as user munge), slurmctld (dropping to user slurm) and slurmd as this process's children, without systemd.
Everything the daemons write (configuration, munge key and socket, state, spool, logs, PID files) is inside the
folder, on ports chosen free, so it touches neither /etc/slurm nor a Slurm or munge already running. Commands reach
it through SLURM_CONF. Accounting is off (no slurmdbd), so sacct has nothing: job states are read from
`scontrol show job`, which keeps a finished job for MinJobAge seconds (set to an hour here).
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]


def missing_packages() -> list[str]:
    out = []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", p], capture_output=True, text=True)
        if r.stdout.strip() != "installed":
            out.append(p)
    return out


def install_packages(timeout: float = 900) -> None:
    missing = missing_packages()
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=timeout, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env,
                   timeout=timeout, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


class OneNodeSlurm:
    def __init__(self, folder: str | Path):
        self.dir = Path(folder).resolve()
        self.conf = self.dir / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def _wait(self, what: str, ok, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}; logs in {self.dir}")
            if ok():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {timeout:.0f} s; logs in {self.dir}")

    def start(self, timeout: float = 60) -> None:
        munge_user, slurm_user = pwd.getpwnam("munge"), pwd.getpwnam("slurm")
        # The daemons check their folders: munge's is its user's, searchable by all (clients reach the socket in it)
        # but not readable; slurm's state is slurm's.
        # Every parent must be searchable by those users (a pytest tmp_path under /tmp/pytest-of-root is not).
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        munge = self.dir / "munge"
        state, spool = self.dir / "state", self.dir / "spool"
        for d in (munge, state, spool):
            d.mkdir(exist_ok=True)
        os.chown(munge, munge_user.pw_uid, munge_user.pw_gid)
        munge.chmod(0o711)
        os.chown(state, slurm_user.pw_uid, slurm_user.pw_gid)
        key = munge / "munge.key"
        if not key.exists():
            # munge's key is 1024 random bytes readable by munge alone.
            key.write_bytes(os.urandom(1024))
            os.chown(key, munge_user.pw_uid, munge_user.pw_gid)
            key.chmod(0o400)
        sock = munge / "munge.socket"
        self.procs["munged"] = subprocess.Popen(
            ["/usr/sbin/munged", "--foreground", f"--socket={sock}", f"--key-file={key}",
             f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed"],
            user="munge", group="munge", extra_groups=[], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait("munged's socket", sock.exists, timeout)

        cpus = os.cpu_count() or 1
        lines = [
            "ClusterName=test",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=slurm",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=3600",
            "KillWait=5",
            f"StateSaveLocation={state}",
            f"SlurmdSpoolDir={spool}",
            f"SlurmctldPidFile={self.dir}/slurmctld.pid",
            f"SlurmdPidFile={self.dir}/slurmd.pid",
            f"SlurmctldLogFile={self.dir}/slurmctld.log",
            f"SlurmdLogFile={self.dir}/slurmd.log",
            # Leave memory headroom so slurmd's own measurement never finds less than configured (that drains the node).
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={max(memory_mb() * 9 // 10, 1)} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.conf.chmod(0o644)
        quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=self.env)
        self.procs["slurmctld"] = subprocess.Popen(["/usr/sbin/slurmctld", "-D", "-i"], **quiet)
        # The machine's host name is not "localhost": slurmd is told which node it is.
        self.procs["slurmd"] = subprocess.Popen(["/usr/sbin/slurmd", "-D", "-N", "localhost"], **quiet)
        self._wait("the node (sinfo: idle)", lambda: self.node_state() == "idle", timeout)

    def node_state(self) -> str:
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env)
        return r.stdout.strip() if r.returncode == 0 else ""

    def stop(self) -> None:
        """Stops the daemons this object started, by their PIDs, slurmd first."""
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, env=kw.pop("env", self.env), **kw)


def main() -> int:
    if os.geteuid() != 0:
        print("slurm_one_node.py needs root (it installs packages and starts daemons)", file=sys.stderr)
        return 2
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/segment-slurm")
    install_packages()
    cluster = OneNodeSlurm(folder)
    try:
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}\n# running; Ctrl-C stops slurmd, slurmctld and munged", flush=True)
        while all(p.poll() is None for p in cluster.procs.values()):
            time.sleep(1)
        print("a daemon exited; logs in", folder, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
