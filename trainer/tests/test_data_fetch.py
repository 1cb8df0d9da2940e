"""segment_data.fetch without network: idempotence, the manifest, damage detection, --force, --verify, refusal to
write in the repository, pinned-hash checks of package members, and the offline error of a failed download."""

import json
import os
import zipfile

import pytest

from segment_data import fetch, load_lits117, manifest, sources, synthetic_isic
from segment_data.errors import DataError


@pytest.fixture
def synthetic_only(monkeypatch):
    """fetch with one step: two synthetic images (the other steps need the network)."""
    monkeypatch.setattr(synthetic_isic, "COUNT", 2)
    outputs = fetch.synthetic_outputs()
    monkeypatch.setattr(fetch, "STEPS", (("synthetic-isic", outputs, fetch.step_synthetic),))
    return outputs


def test_fetch_writes_a_manifest_of_every_file(tmp_path, synthetic_only):
    fetch.fetch(str(tmp_path))
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["format"] == "segment-data-manifest/1"
    assert sorted(doc["files"]) == sorted(synthetic_only)
    on_disk = sorted(os.path.relpath(os.path.join(d, f), tmp_path) for d, _, fs in os.walk(tmp_path) for f in fs)
    assert on_disk == sorted(synthetic_only + ["manifest.json"])       # no temporary file left behind
    for rel, entry in doc["files"].items():
        assert entry["sha256"] == manifest.sha256_file(tmp_path / rel)
        assert entry["bytes"] == (tmp_path / rel).stat().st_size
        assert entry["made"].startswith("SYNTHETIC") and entry["version"] == f"seed {synthetic_isic.SEED}"
    assert "SYNTHETIC DATA" in (tmp_path / "synthetic-isic" / "README.txt").read_text()


def test_second_run_skips_and_damage_is_caught(tmp_path, synthetic_only, capsys):
    fetch.fetch(str(tmp_path))
    target = tmp_path / "synthetic-isic" / "ISIC_synth00001_segmentation.png"
    before = target.stat().st_mtime_ns
    fetch.fetch(str(tmp_path))
    assert "synthetic-isic: up to date" in capsys.readouterr().err
    assert target.stat().st_mtime_ns == before

    target.write_bytes(b"damaged")
    with pytest.raises(DataError, match=r"(?s)ISIC_synth00001_segmentation\.png: sha256 .* differs from the "
                                        r"manifest's .*--force") as raised:
        fetch.fetch(str(tmp_path))
    assert raised.value.exit_code == 3
    assert fetch.main(["--cache", str(tmp_path), "--verify"]) == 3

    fetch.fetch(str(tmp_path), force=True)
    assert manifest.problems(str(tmp_path)) == []
    assert fetch.main(["--cache", str(tmp_path), "--verify"]) == 0


def test_a_missing_output_is_made_again(tmp_path, synthetic_only):
    fetch.fetch(str(tmp_path))
    first = (tmp_path / "synthetic-isic" / "ISIC_synth00000.png").read_bytes()
    (tmp_path / "synthetic-isic" / "ISIC_synth00000.png").unlink()
    fetch.fetch(str(tmp_path))
    assert (tmp_path / "synthetic-isic" / "ISIC_synth00000.png").read_bytes() == first    # deterministic


def test_cache_inside_the_repository_is_refused(tmp_path):
    with pytest.raises(DataError, match="is inside the repository") as raised:
        fetch.fetch(os.path.join(fetch.REPO, "data-cache-test"))
    assert raised.value.exit_code == 2
    assert not os.path.exists(os.path.join(fetch.REPO, "data-cache-test"))


def test_verify_without_a_manifest(tmp_path, capsys):
    assert fetch.main(["--cache", str(tmp_path), "--verify"]) == 3
    assert "no manifest; run `make data` first" in capsys.readouterr().err


def fake_wheel(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def test_wheel_members_are_checked_against_the_pinned_sha256(tmp_path):
    good = {"pkg/data/a.bin": b"expected"}
    src = sources.Source(registry="PyPI", package="pkg", version="1", filename="pkg.whl", sha256="",
                         members={"pkg/data/a.bin": manifest.sha256_bytes(b"expected")})
    fake_wheel(tmp_path / "ok.whl", good)
    assert fetch.wheel_members(str(tmp_path / "ok.whl"), src) == good
    fake_wheel(tmp_path / "bad.whl", {"pkg/data/a.bin": b"changed"})
    with pytest.raises(DataError, match=r"pkg/data/a\.bin has sha256 .*, not the pinned .*: pkg no longer ships"):
        fetch.wheel_members(str(tmp_path / "bad.whl"), src)
    fake_wheel(tmp_path / "missing.whl", {"other": b""})
    with pytest.raises(DataError, match="not the expected wheel"):
        fetch.wheel_members(str(tmp_path / "missing.whl"), src)


def test_failed_download_says_what_to_do_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")                     # pip fails at once, as without network
    src = sources.Source(registry="PyPI", package="stardist", version="0.9.2",
                         filename=sources.STARDIST.filename, sha256=sources.STARDIST.sha256)
    cache = fetch.Cache(str(tmp_path), force=False)
    with pytest.raises(DataError, match=r"could not download stardist==0\.9\.2 from PyPI\. pip said:(.|\n)*"
                                        r"Offline, copy stardist-0\.9\.2-.*\.whl \(sha256 2316c0fe.*\) into "):
        fetch.fetch_wheel(cache, src)
    assert os.listdir(tmp_path / "downloads") == []            # the temporary download folder is gone


def test_a_wheel_put_in_downloads_by_hand_is_used_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    (tmp_path / "downloads").mkdir()
    fake_wheel(tmp_path / "downloads" / "pkg.whl", {"pkg/a": b"x"})
    wheel = tmp_path / "downloads" / "pkg.whl"
    src = sources.Source(registry="PyPI", package="pkg", version="1", filename="pkg.whl",
                         sha256=manifest.sha256_file(wheel), members={"pkg/a": manifest.sha256_bytes(b"x")})
    cache = fetch.Cache(str(tmp_path), force=False)
    assert fetch.fetch_wheel(cache, src) == str(wheel)
    assert cache.files["downloads/pkg.whl"]["sha256"] == src.sha256


def test_load_lits117_without_the_cache_says_to_run_make_data(tmp_path):
    with pytest.raises(DataError, match=r"(?s)LiTS-117 is not in the cache.*lits117/image\.nii\.gz: not listed.*"
                                        r"Run `make data`"):
        load_lits117(str(tmp_path))
