"""Makes the screenshot of the HTML score report in docs/ (docs/html-score-report.png) as `make html-screenshot`
does: small CT-like cases (trainer/tests/example_cases.py), predictions made from their references (shifted by a few
voxels, so the outlines differ visibly: the shipped liver model finds almost nothing in these synthetic cases),
`segment score --html --images`, and headless Chromium's screenshot of the page (1280 x 1400), reduced to a
256-colour palette so the PNG stays small. (No screenshot of a run page on real CT is committed: the one CT the
project fetches is LiTS data, which is not redistributed.)

    python docs/make_html_screenshot.py SEGMENT_BIN OUT_DIR"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "trainer" / "tests"))
from example_cases import write_cases  # noqa: E402


def shoot(page: Path, png: Path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--host-resolver-rules=MAP * ~NOTFOUND", f"--screenshot={png}", "--window-size=1280,1400",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    Image.open(png).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def main(binary: str, out: str):
    out_dir = Path(out).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        names = write_cases(str(d / "cases"), str(d / "refs"), 5, shape=(96, 80, 24))
        (d / "pred").mkdir()
        for i, name in enumerate(names):
            ref = nib.load(d / "refs" / f"{name}.nii.gz")
            lab = np.asarray(ref.dataobj).astype(np.uint8)
            pred = np.roll(lab, shift=(i, 2 - i), axis=(0, 1))
            nib.save(nib.Nifti1Image(pred, ref.affine), d / "pred" / f"{name}.nii.gz")
        model = REPO / "models" / "swin-unet-lits-advmim.segm"
        subprocess.run([binary, "score", "--pred", d / "pred", "--ref", d / "refs", "--images", d / "cases", "--model", model,
                        "--html", d / "score.html", "--quiet"], check=True, capture_output=True)
        shoot(d / "score.html", out_dir / "html-score-report.png")


if __name__ == "__main__":
    main(*sys.argv[1:3])
