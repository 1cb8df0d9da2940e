"""`segment run --html` and `segment score --html` checked in a real browser: headless Chromium (Debian's `chromium`)
loads each page from disk with name resolution switched off, and the DOM it built (after the page's script ran) is
compared with the JSON report of the same command: every case present, every number equal, the quartiles of the box
plots equal to numpy.percentile's; the page may log nothing on the console (the page's own script logs nothing, so
any console line is an error, a blocked fetch or an injected script); a screenshot is taken and must not be blank.

One case is named like an injection (`<img src=x onerror=console.error(1)>`): it must be shown as text, create no
element and log nothing."""
import base64
import io
import json
import math
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from example_cases import write_cases

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment").resolve()
FIXTURES = Path(os.environ.get("SEGMENT_FIXTURES") or REPO / ".fixtures")
MODEL = REPO / "models" / "swin-unet-lits-advmim.segm"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=console.error(1)>"
METRICS = ["Dice", "IoU", "HD", "HD95", "ASSD"]


# ---------------------------------------------------------------------------------------------- browser and DOM

def chromium(url: str, *extra: str) -> subprocess.CompletedProcess:
    """Runs headless Chromium on `url`; console messages go to stderr as "...:CONSOLE(...)" lines. Host resolution
    is mapped to nothing, so a page that fetched anything over the network would fail and log it."""
    assert Path(CHROMIUM).is_file(), "no chromium: apt-get install chromium (make test installs it)"
    args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--enable-logging=stderr", "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND", *extra, url]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text_parts = tag, dict(attrs), parent, [], []

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.text_parts)

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag=None, **attrs):
        return [n for n in self.iter() if (tag is None or n.tag == tag)
                and all(n.attrs.get(k.replace("_", "-")) == v if v is not True else k.replace("_", "-") in n.attrs
                        for k, v in attrs.items())]

    def find(self, tag=None, **attrs):
        found = self.find_all(tag, **attrs)
        return found[0] if found else None


class DOM(HTMLParser):
    """The DOM Chromium dumps, as a tree (the standard library's tokenizer; void elements closed at once)."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", [], None)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        self.current.text_parts.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        self.current.text_parts.append(node)

    def handle_endtag(self, tag):
        n = self.current
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.current = n.parent

    def handle_data(self, data):
        self.current.text_parts.append(data)


def load(page: Path, fragment: str = "") -> tuple[Node, list[str]]:
    r = chromium(page.as_uri() + fragment, "--dump-dom")
    return DOM(r.stdout).root, console_lines(r.stderr)


def number(text: str) -> float:
    """A data-value: a decimal, or "nan", "inf", "-inf" (as the JSON reports write them; float() reads all four)."""
    return float(text)


def same(a: float, b: float) -> bool:
    """Equal as doubles, NaN equal to NaN: the page writes the shortest decimal that reads back as the same double,
    as the JSON report does, so no tolerance is needed."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def report_number(v) -> float:
    return number(v) if isinstance(v, str) else float(v)


def shown(v: float, decimals: int) -> str:
    return "–" if math.isnan(v) else ("∞" if v > 0 else "−∞") if math.isinf(v) else f"{v:.{decimals}f}"


def check_self_contained(page: Path, dom: Node):
    """No network: every picture is a PNG data URI that decodes to its stated size; links stay in the page;
    no element loads anything from elsewhere."""
    imgs = dom.find_all("img")
    for img in imgs:
        src = img.attrs["src"]
        assert src.startswith("data:image/png;base64,"), src[:80]
        picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert picture.format == "PNG" and picture.size == (int(img.attrs["width"]), int(img.attrs["height"]))
    for n in dom.iter():
        assert n.tag not in ("link", "iframe", "object", "embed", "audio", "video"), n.tag
        if n.tag == "script":
            assert "src" not in n.attrs
        if "href" in n.attrs:
            assert n.attrs["href"].startswith("#"), n.attrs["href"]
    text = page.read_text()
    # The SVG namespace is a name, never fetched; no other address may appear.
    assert text.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    return imgs


def screenshot(page: Path, out: Path):
    chromium(page.as_uri(), f"--screenshot={out}", "--window-size=1280,2000", "--hide-scrollbars")
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (2000, 1280, 3)
    # Not blank: the page's text, tables and pictures give many distinct grey levels.
    assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 100


def test_console_check_can_fail(tmp_path):
    """The console check sees an error logged by a page and an uncaught exception (so its silence means something)."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); undefinedFunction();</script>")
    _, lines = load(page)
    assert any("boom" in line for line in lines) and any("Uncaught" in line for line in lines), lines


# ---------------------------------------------------------------------------------------------- cases

@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Three CT-like cases and their references, plus a fourth (a copy of case01) named like an injection."""
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    d = tmp_path_factory.mktemp("html-cases")
    names = write_cases(str(d / "cases"), str(d / "refs"), 3)
    for folder in ("cases", "refs"):
        shutil.copy(d / folder / "case01.nii.gz", d / folder / f"{HOSTILE}.nii.gz")
    return d, names + [HOSTILE]


def segment(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


# ---------------------------------------------------------------------------------------------- score

@pytest.fixture(scope="module")
def scored(cases, tmp_path_factory):
    """Predictions made from the references (shifted by a few voxels; case02's label 2 removed, so its distances
    are infinite; the injection-named case's prediction is empty in every label), scored with --images."""
    import nibabel as nib
    d, names = cases
    out = tmp_path_factory.mktemp("html-score")
    (out / "pred").mkdir()
    for i, name in enumerate(names):
        ref = nib.load(d / "refs" / f"{name}.nii.gz")
        lab = np.asarray(ref.dataobj).astype(np.uint8)
        pred = np.roll(lab, shift=(i + 1, -i), axis=(0, 1))
        if name == "case02":
            pred[pred == 2] = 1
        if name == HOSTILE:
            pred[:] = 0
        nib.save(nib.Nifti1Image(pred, ref.affine), out / "pred" / f"{name}.nii.gz")
    r = segment("score", "--pred", out / "pred", "--ref", d / "refs", "--model", MODEL, "--images", d / "cases",
                "--json", out / "score.json", "--html", out / "score.html", "--quiet", cwd=out)
    assert r.returncode == 0, r.stderr
    return out, json.loads((out / "score.json").read_text()), names


def class_keys(report) -> list[str]:
    return [str(label) for label in report["labels"]] + list(report.get("regions") or [])


def test_score_page_numbers_equal_the_json(scored):
    out, report, names = scored
    dom, console = load(out / "score.html")
    assert console == [], console
    assert dom.find("body").attrs.get("data-ready") == "1", "the page's script did not run to its end"
    check_self_contained(out / "score.html", dom)
    keys = class_keys(report)
    assert keys == ["1", "2"]

    # Every case, once, with each metric of each class equal to the report's (shown rounded as documented).
    rows = dom.find("table", id="cases").find("tbody").find_all("tr")
    by_case = {c["case"]: c for c in report["metric_per_case"]}
    assert sorted(r.attrs["data-case"] for r in rows) == sorted(names) == sorted(by_case)
    for row in rows:
        case = by_case[row.attrs["data-case"]]
        assert row.find("td", data_col="case").text() == case["case"]
        for key in keys:
            for m in METRICS:
                cell = row.find("td", data_col=f"{key}:{m}")
                want = report_number(case["metrics"][key][m])
                assert same(number(cell.attrs["data-value"]), want), (case["case"], key, m, cell.attrs, want)
                assert cell.text() == shown(want, 4 if m in ("Dice", "IoU") else 2)
        # One overlay per case, the outlines over the case's own image (its caption names the slice).
        assert len(row.find_all("img")) == 1 and row.find("figcaption").text().startswith("slice ")

    # Worst first: by the mean Dice over classes (finite values), NaN last; ties keep the report's (name) order.
    def mean_dice(c):
        v = [report_number(c["metrics"][k]["Dice"]) for k in keys]
        v = [x for x in v if math.isfinite(x)]
        return sum(v) / len(v) if v else math.nan
    order = sorted(report["metric_per_case"], key=lambda c: (math.isnan(mean_dice(c)), mean_dice(c)))
    assert [r.attrs["data-case"] for r in rows] == [c["case"] for c in order]
    for row, c in zip(rows, order):
        assert same(number(row.find("td", data_col="mean_Dice").attrs["data-value"]), mean_dice(c))

    # Per class: mean as in the report; median over the finite values (numpy.percentile 50, linear: the page uses
    # the same interpolation formula, so equal to the last bit; 1e-12 relative allows for numpy's summation order);
    # worst over the defined values (an infinite distance is the worst).
    summary = dom.find("table", id="summary")
    for key in keys:
        for m in METRICS:
            tr = summary.find("tr", data_class=key, data_metric=m)
            values = np.array([report_number(c["metrics"][key][m]) for c in report["metric_per_case"]])
            finite = values[np.isfinite(values)]
            defined = values[~np.isnan(values)]
            cells = {td.attrs["data-stat"]: number(td.attrs["data-value"]) for td in tr.find_all("td", data_stat=True)}
            assert same(cells["mean"], report_number(report["mean"][key][m])), (key, m)
            median = np.percentile(finite, 50) if finite.size else math.nan
            assert (math.isnan(median) and math.isnan(cells["median"])) or cells["median"] == pytest.approx(median, rel=1e-12)
            worst = (defined.min() if m in ("Dice", "IoU") else defined.max()) if defined.size else math.nan
            assert same(cells["worst"], float(worst)), (key, m, cells, worst)
    # case02's label 2 was removed from its prediction: its HD95 is infinite, the worst of label 2.
    assert number(summary.find("tr", data_class="2", data_metric="HD95").find("td", data_stat="worst").attrs["data-value"]) == math.inf

    # Box plots: quartiles as numpy.percentile (linear), whiskers at the extreme values within 1.5 IQR, over the
    # finite values. Same formula as numpy: 1e-12 relative for rounding in a different order.
    for m in ("Dice", "HD95"):
        svg = dom.find("svg", data_metric=m)
        for key in keys:
            g = svg.find("g", data_class=key)
            values = np.array([report_number(c["metrics"][key][m]) for c in report["metric_per_case"]])
            finite = np.sort(values[np.isfinite(values)])
            q1, med, q3 = np.percentile(finite, [25, 50, 75])
            iqr = q3 - q1
            inside = finite[(finite >= q1 - 1.5 * iqr) & (finite <= q3 + 1.5 * iqr)]
            for attr, want in (("q1", q1), ("median", med), ("q3", q3), ("low", inside.min()), ("high", inside.max())):
                assert number(g.attrs[f"data-{attr}"]) == pytest.approx(want, rel=1e-12, abs=1e-12), (m, key, attr)
            assert int(g.attrs["data-n"]) == finite.size
            assert int(g.attrs["data-outliers"]) == finite.size - inside.size


def test_score_page_sorts_in_the_browser(scored):
    """`#sort=COLUMN&dir=...` makes the page's script sort the table on load, as a click does."""
    out, report, _ = scored
    dom, console = load(out / "score.html", "#sort=1:HD95&dir=desc")
    assert console == [], console
    table = dom.find("table", id="cases")
    assert table.attrs.get("data-sorted") == "1:HD95 desc"
    got = [r.attrs["data-case"] for r in table.find("tbody").find_all("tr")]
    hd95 = {c["case"]: report_number(c["metrics"]["1"]["HD95"]) for c in report["metric_per_case"]}
    # Descending, NaN last; equal values keep their previous (worst-first) order, as Array.prototype.sort is stable.
    assert [hd95[n] for n in got] == sorted(hd95.values(), key=lambda v: (math.isnan(v), -v if not math.isnan(v) else 0))
    dom, _ = load(out / "score.html", "#sort=case&dir=asc")
    assert [r.attrs["data-case"] for r in dom.find("table", id="cases").find("tbody").find_all("tr")] == \
        sorted(hd95, key=lambda s: [ord(ch) for ch in s])


def test_score_page_shows_a_hostile_name_as_text(scored):
    out, _, _ = scored
    dom, console = load(out / "score.html")
    assert console == [], console                 # an executed onerror would have logged "1"
    assert not [i for i in dom.find_all("img") if i.attrs.get("src") == "x"]
    row = dom.find("tr", data_case=HOSTILE)
    assert row is not None and row.find("td", data_col="case").text() == HOSTILE
    assert "&lt;img src=x onerror=console.error(1)&gt;" in (out / "score.html").read_text()


def test_score_page_screenshot(scored, tmp_path):
    out, _, _ = scored
    screenshot(out / "score.html", tmp_path / "score.png")


def test_score_html_needs_no_images_and_is_written_only_when_asked(scored, cases, tmp_path):
    """Without --images the outlines are drawn on black; without --html no page is written."""
    out, report, names = scored
    d, _ = cases
    r = segment("score", "--pred", out / "pred", "--ref", d / "refs", "--html", tmp_path / "plain.html", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dom, console = load(tmp_path / "plain.html")
    assert console == [] and len(dom.find("table", id="cases").find("tbody").find_all("tr")) == len(names)
    assert "on black" in (tmp_path / "plain.html").read_text()
    r = segment("score", "--pred", out / "pred", "--ref", d / "refs", "--json", tmp_path / "s.json", "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and not list(tmp_path.glob("*.html.*")) and not (tmp_path / "s.html").exists()
    r = segment("score", "--pred", out / "pred", "--ref", d / "refs", "--images", d / "cases", cwd=tmp_path)
    assert r.returncode == 2 and "--images" in r.stderr
    # A folder of images that is not there: exit 3 naming it, before anything is scored or written.
    r = segment("score", "--pred", out / "pred", "--ref", d / "refs", "--images", tmp_path / "nowhere", "--html",
                tmp_path / "x.html", "--json", tmp_path / "x.json", cwd=tmp_path)
    assert r.returncode == 3 and "nowhere" in r.stderr, r.stderr
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------- run

@pytest.fixture(scope="module")
def ran(cases, tmp_path_factory):
    d, names = cases
    out = tmp_path_factory.mktemp("html-run")
    r = segment(d / "cases", "-o", out / "masks", "--model", MODEL, "--threads", "2", "--report", out / "run.json",
                "--html", out / "run.html", "--quiet", cwd=out)
    assert r.returncode == 0, r.stderr
    return out, json.loads((out / "run.json").read_text()), names


def test_run_page_numbers_equal_the_json_and_numpy(ran, cases):
    import nibabel as nib
    out, report, names = ran
    d, _ = cases
    dom, console = load(out / "run.html")
    assert console == [], console
    assert dom.find("body").attrs.get("data-ready") == "1"
    check_self_contained(out / "run.html", dom)
    sections = dom.find_all("section", data_case=True)
    assert sorted(s.attrs["data-case"] for s in sections) == sorted(names) == sorted(c["name"] for c in report["cases"])
    table = dom.find("table", id="labels")
    for case in report["cases"]:
        image = nib.load(d / "cases" / f"{case['name']}.nii.gz")
        values = image.get_fdata()
        zooms = np.array(image.header.get_zooms()[:3], dtype=np.float64)
        mask = np.asarray(nib.load(case["output"]).dataobj)
        rows = table.find_all("tr", data_case=case["name"])
        assert [int(r.attrs["data-label"]) for r in rows] == [l["label"] for l in case["labels"]]
        for row, l in zip(rows, case["labels"]):
            cell = {td.attrs["data-col"]: td for td in row.find_all("td", data_col=True)}
            # The page against the JSON report: the same doubles.
            assert int(cell["voxels"].attrs["data-value"]) == l["voxels"]
            assert same(number(cell["volume_ml"].attrs["data-value"]), l["volume_ml"])
            assert same(number(cell["mean_intensity"].attrs["data-value"]), l["mean_intensity"])
            assert cell["volume_ml"].text() == f"{l['volume_ml']:.2f}" and cell["mean_intensity"].text() == f"{l['mean_intensity']:.1f}"
            # The JSON report against numpy on the files. Voxels: exact. Volume: the header's float32 voxel size in
            # double, multiplied in another order (1e-12 relative). Mean intensity: the int16 values are exact in
            # float32 and their sums exact in double (far below 2^53), so only the final division differs: 1e-12.
            inside = mask == l["label"]
            assert l["voxels"] == int(inside.sum())
            assert l["volume_ml"] == pytest.approx(inside.sum() * zooms.prod() / 1000, rel=1e-12)
            assert l["mean_intensity"] == pytest.approx(values[inside].mean(), rel=1e-12)
        # Three orthogonal views of each volume: the chosen slice and the two planes across the slices.
        section = dom.find("section", data_case=case["name"])
        captions = [f.text() for f in section.find_all("figcaption")]
        assert len(captions) == 3 and captions[0].startswith("slice ") and all(c.startswith("across the slices") for c in captions[1:])
        # The chosen slice (auto) is the one with the most foreground, as --overlay picks it.
        k = int(captions[0].split()[1])
        per_slice = (mask != 0).sum(axis=(0, 1))
        assert per_slice[k] == per_slice.max()
        # Pictures at a readable size: the long side at least 512 pixels (the legend strip adds height).
        for img in section.find_all("img"):
            assert max(int(img.attrs["width"]), int(img.attrs["height"])) >= 512
    row = table.find("tr", data_case=HOSTILE)
    assert row.find("td", data_col="case").text() == HOSTILE
    assert not [i for i in dom.find_all("img") if i.attrs.get("src") == "x"]


def test_run_page_screenshot(ran, tmp_path):
    out, _, _ = ran
    screenshot(out / "run.html", tmp_path / "run.png")


def test_run_html_only_when_asked(cases, tmp_path):
    d, names = cases
    r = segment(d / "cases" / "case00.nii.gz", "-o", tmp_path / "m.nii.gz", "--model", MODEL, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nii.gz"]
    # The page is an output: it may not overwrite an input.
    r = segment(d / "cases" / "case00.nii.gz", "-o", tmp_path / "n.nii.gz", "--model", MODEL, "--html",
                d / "cases" / "case00.nii.gz", "--quiet", cwd=tmp_path)
    assert r.returncode == 2, r.stderr


def test_run_page_of_pictures_and_failed_cases(cases, tmp_path):
    """PNG pictures (gray and colour): the mean of their pixel values per label (mean_intensity, mean_rgb) against
    numpy; a case that fails (a file named like an injection that is not a PNG) is listed with its error, as text."""
    rng = np.random.default_rng(3)
    pics = tmp_path / "pics"
    pics.mkdir()
    yy, xx = np.mgrid[0:96, 0:128]
    blob = ((yy - 40) ** 2 + (xx - 70) ** 2 < 25 ** 2)
    gray = np.clip(rng.normal(60, 15, (96, 128)) + 120 * blob, 0, 255).astype(np.uint8)
    Image.fromarray(gray).save(pics / "gray.png")
    rgb = np.clip(rng.normal(80, 20, (96, 128, 3)) + blob[..., None] * np.array([120, 40, 10]), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(pics / "colour.png")
    (pics / f"{HOSTILE}.png").write_bytes(b"not a png")
    r = segment(pics, "-o", tmp_path / "masks", "--model", MODEL, "--report", tmp_path / "run.json",
                "--html", tmp_path / "run.html", "--quiet", cwd=tmp_path)
    assert r.returncode == 6, r.stderr                       # some cases failed
    report = json.loads((tmp_path / "run.json").read_text())
    dom, console = load(tmp_path / "run.html")
    assert console == [], console
    check_self_contained(tmp_path / "run.html", dom)
    table = dom.find("table", id="labels")
    for case, pixels in (("gray", gray.astype(np.float64)), ("colour", rgb.astype(np.float64))):
        c = next(c for c in report["cases"] if c["name"] == case)
        mask = np.asarray(Image.open(c["output"]))
        for l in c["labels"]:
            inside = mask == (l["label"] if mask.max() < 255 else 255 * l["label"])
            # Pixel values are small integers, their sums exact in double: 1e-12 relative for the division.
            if case == "gray":
                assert l["mean_intensity"] == pytest.approx(pixels[inside].mean(), rel=1e-12)
                want = [l["mean_intensity"]]
            else:
                assert "mean_intensity" not in l
                assert l["mean_rgb"] == pytest.approx(pixels[inside].mean(axis=0).tolist(), rel=1e-12)
                want = l["mean_rgb"]
            cell = table.find("tr", data_case=case, data_label=str(l["label"])).find("td", data_col="mean_intensity")
            got = [number(v) for v in cell.attrs.get("data-values", cell.attrs["data-value"]).split()]
            assert got == want
        assert len(dom.find("section", data_case=case).find_all("img")) == 1
    failed = dom.find("section", data_case=HOSTILE)
    assert failed.find("h3").text().startswith(HOSTILE) and failed.find("p", **{"class": "error"}) is not None
    assert HOSTILE in failed.find("p", **{"class": "error"}).text()
    assert not [i for i in dom.find_all("img") if i.attrs.get("src") == "x"]


def test_score_page_lists_failed_cases_as_text(scored, cases, tmp_path):
    out, _, names = scored
    d, _ = cases
    pred = tmp_path / "pred"
    shutil.copytree(out / "pred", pred)
    (pred / f"{HOSTILE}.nii.gz").write_bytes(b"not a nifti")
    r = segment("score", "--pred", pred, "--ref", d / "refs", "--html", tmp_path / "s.html", "--quiet", cwd=tmp_path)
    assert r.returncode == 6, r.stderr
    dom, console = load(tmp_path / "s.html")
    assert console == [], console
    row = dom.find("table", id="failed").find("tr", data_case=HOSTILE)
    assert row.find("td").text() == HOSTILE and HOSTILE in row.find("td", **{"class": "error"}).text()
    assert len(dom.find("table", id="cases").find("tbody").find_all("tr")) == len(names) - 1
    assert dom.find("p", id="counts").attrs["data-failed"] == "1"


def test_run_page_draws_skipped_cases_from_their_masks(cases, tmp_path):
    """A case skipped by --continue is drawn from the mask it found (its label table stays empty: not segmented)."""
    d, _ = cases
    scan = d / "cases" / "case00.nii.gz"
    assert segment(scan, "-o", tmp_path / "m.nii.gz", "--model", MODEL, "--quiet", cwd=tmp_path).returncode == 0
    r = segment(scan, "-o", tmp_path / "m.nii.gz", "--model", MODEL, "--continue", "--html", tmp_path / "p.html",
                "--report", tmp_path / "r.json", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["cases"][0]["status"] == "skipped"
    dom, console = load(tmp_path / "p.html")
    assert console == [], console
    section = dom.find("section", data_case="case00")
    assert section.find("span", **{"class": "status-skipped"}) is not None and len(section.find_all("img")) == 3
    assert dom.find("tr", data_case="case00").attrs.get("data-label") is None


# ---------------------------------------------------------------------------------------------- DICOM series

def test_run_page_of_a_dicom_series(tmp_path):
    """A series written as NIfTI is drawn like any volume (three views from the assembled series); one written as a
    DICOM SEG is listed without pictures, saying why."""
    series = FIXTURES / "dicom" / "lits117" / "axial"
    assert series.is_dir(), f"missing fixture {series}: run `make fixtures`"
    r = segment(series, "-o", "mask.nii.gz", "--html", "nifti.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dom, console = load(tmp_path / "nifti.html")
    assert console == []
    pictures = [n for n in dom.iter() if n.tag == "img" and n.attrs.get("src", "").startswith("data:image/png;base64,")]
    assert len(pictures) == 3, "a volume gets three orthogonal views"
    assert "no pictures" not in dom.text()

    r = segment(series, "-o", "seg.dcm", "--html", "seg.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dom, console = load(tmp_path / "seg.html")
    assert console == []
    assert not [n for n in dom.iter() if n.tag == "img"]
    assert "mask is a DICOM SEG" in dom.text()
