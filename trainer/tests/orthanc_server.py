"""A private Orthanc (Debian package orthanc) for tests: its own configuration, storage and index in a temporary
folder, HTTP on a free loopback port, no DICOM listener, no plugins, no authentication; started as a child process
and stopped by its PID. Talks to Orthanc's REST API with urllib."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancServer:
    def __init__(self, folder: Path, startup_timeout: float = 60.0):
        self.folder = Path(folder)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OrthancServer":
        exe = shutil.which("Orthanc")
        if exe is None:
            raise RuntimeError("Orthanc is not installed: Debian package orthanc (`make setup` installs it)")
        self.port = free_port()
        (self.folder / "storage").mkdir(parents=True, exist_ok=True)
        (self.folder / "index").mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "segment-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpServerEnabled": True,
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,        # loopback only
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,         # no DICOM listener: the tests use REST only
            "DicomPort": free_port(),
            "Plugins": [],
            "LuaScripts": [],
            "SaveJobs": False,
            "StorageCompression": False,
        }
        cfg = self.folder / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=1))
        self.log = open(self.folder / "orthanc.log", "w")
        self.process = subprocess.Popen([exe, str(cfg)], stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                system = self.get("/system")
                if "Version" in system:
                    self.version = system["Version"]
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer /system within {self.startup_timeout} s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM to our Orthanc's PID (it shuts down cleanly), SIGKILL after 20 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self.log.close()

    def log_text(self) -> str:
        self.log.flush()
        return (self.folder / "orthanc.log").read_text(errors="replace")[-4000:]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- REST -------------------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.read()

    def get(self, path: str):
        return json.loads(self.request("GET", path))

    def post(self, path: str, payload) -> object:
        return json.loads(self.request("POST", path, json.dumps(payload).encode(), "application/json"))

    def upload(self, path: Path) -> dict:
        """POST /instances with one DICOM file: Orthanc's answer (ID, ParentSeries, ParentStudy, Status)."""
        return json.loads(self.request("POST", "/instances", Path(path).read_bytes(), "application/dicom"))

    def find(self, level: str, **query) -> list[str]:
        """Orthanc IDs of the resources at `level` (Patient, Study, Series, Instance) matching DICOM tag values."""
        return self.post("/tools/find", {"Level": level, "Query": query})
