"""What segment_data fetches: each source package pinned by version and sha256, the members taken from it (each
pinned by sha256, so a rebuilt container with the same files still verifies), and its licence.

Wheels are downloaded for one fixed platform (CPython 3.11, manylinux x86_64) whatever the local Python, so the
same file, with the same sha256, arrives on every machine: only its data files are used, never its code.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    registry: str               # "PyPI" or "Debian"
    package: str
    version: str                # pinned for PyPI; for Debian the version apt serves is recorded in the manifest
    filename: str               # the downloaded file ("" for Debian: the name carries apt's version)
    sha256: str                 # of the downloaded file ("" for Debian: checked through its members)
    members: dict = field(default_factory=dict)   # path inside the package -> sha256
    licence: str = ""


# Wheel tags asked of pip: the pinned files exist for them (see the filenames).
PIP_PLATFORM_ARGS = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                     "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]

LIVER = Source(
    registry="PyPI",
    package="liver-ct-segmentation-package",
    version="1.6.0",
    filename="liver_ct_segmentation_package-1.6.0-py2.py3-none-any.whl",
    sha256="67ffa526d8500ce5e3d9f2c96c1690543d811d352d93d531301d35791b9d6bba",
    members={
        "liver_ct_segmentation_package/data/img_117.mrc":
            "6519548844be8c92a6f37dff22961800ec4baad72a4efbb9f7061ffd265e1780",
        "liver_ct_segmentation_package/data/lab_117.mrc":
            "0f4950afdb218ae1a8790c2367a3f1bffe3d68cf186239cdfae897e4d4f99240",
    },
    licence="package MIT (Luis Kuhn Cuellar); the volume is case 117 of the LiTS challenge training set, whose "
            "own terms apply (research use; fetched at set-up, never committed or redistributed by this project)",
)

STARDIST = Source(
    registry="PyPI",
    package="stardist",
    version="0.9.2",
    filename="stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256="2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
    members={
        "stardist/data/images/img2d.tif": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
        "stardist/data/images/mask2d.tif": "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
    },
    licence="BSD-3-Clause (Uwe Schmidt, Martin Weigert), the package's sample data",
)

SKIMAGE = Source(
    registry="PyPI",
    package="scikit-image",
    version="0.25.2",
    filename="scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641",
    members={"skimage/data/retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6"},
    licence="CC0 1.0 (Mikael Haggstrom, 'Fundus photograph of normal left eye', via scikit-image, BSD-3-Clause)",
)

MRICRON = Source(
    registry="Debian",
    package="mricron-data",
    version="",
    filename="",
    sha256="",
    members={
        "./usr/share/mricron/templates/ch2.nii.gz":
            "a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309",
        "./usr/share/mricron/templates/ch2bet.nii.gz":
            "592a2d20abdf36eefcb540ca8958428040edffc1bc1a18ba1dcfbabac77c5dd1",
    },
    licence="BSD-3-clause as packaged by Debian (MRIcron, Chris Rorden); ch2 is the Colin27 single-subject T1 "
            "template (Holmes et al. 1998, Montreal Neurological Institute)",
)

# Facts about the content, checked after every conversion (stable across library versions, unlike output bytes).
LITS117_SHAPE = (128, 128, 128)
LITS117_LABEL_COUNTS = {0: 1_481_801, 1: 485_268, 2: 130_083}
LITS117_HU_RANGE = (-1063.25, 1877.25)
NUCLEI_SHAPE = (512, 512)
NUCLEI_INSTANCES = 125
NUCLEI_FOREGROUND = 52_226
BRAIN_SHAPE = (181, 217, 181)
BRAIN_VOXELS = 1_737_193
RETINA_SIZE = (1411, 1411)
