"""The cache's manifest.json (every file, its sha256 and provenance) and atomic writes into the cache.

manifest.json = {"format": "segment-data-manifest/1",
                 "files": {RELATIVE_PATH: {"sha256", "bytes", "source", "version", "licence", "made"}}}
It is rewritten atomically after every step, so a run stopped half-way keeps what it finished.
"""

import hashlib
import json
import os
import secrets

from .errors import DataError

MANIFEST = "manifest.json"
FORMAT = "segment-data-manifest/1"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: str, data: bytes) -> None:
    """Writes `data` to a hidden temporary file beside `path`, fsyncs it, then renames it over `path`."""
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise DataError(f"cannot write {path}: {e.strerror}. Check the folder is writable and has free space, "
                        "or choose another cache folder", exit_code=5) from e


def load(cache: str) -> dict:
    """The manifest's "files" table ({} when there is no manifest yet)."""
    path = os.path.join(cache, MANIFEST)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable manifest ({e}); delete it and run `make data` again to rebuild "
                        "the cache") from e
    if doc.get("format") != FORMAT or not isinstance(doc.get("files"), dict):
        raise DataError(f"{path}: not a {FORMAT} manifest; delete it and run `make data` again")
    return doc["files"]


def save(cache: str, files: dict) -> None:
    doc = {"format": FORMAT, "files": {k: files[k] for k in sorted(files)}}
    atomic_write(os.path.join(cache, MANIFEST), (json.dumps(doc, indent=2) + "\n").encode())


def problems(cache: str, paths=None) -> list:
    """What does not match the manifest: missing files and sha256 mismatches, for `paths` (default: every entry)."""
    files = load(cache)
    found = []
    for rel in (files if paths is None else paths):
        entry = files.get(rel)
        full = os.path.join(cache, rel)
        if entry is None:
            found.append(f"{full}: not listed in {os.path.join(cache, MANIFEST)}")
        elif not os.path.exists(full):
            found.append(f"{full}: listed in the manifest but missing")
        else:
            actual = sha256_file(full)
            if actual != entry["sha256"]:
                found.append(f"{full}: sha256 {actual} differs from the manifest's {entry['sha256']}")
    return found
