"""splatpack: small, fast, faithful Gaussian splats.

nerfstudio is a dependency but is not listed in install_requires: its metadata pins gsplat 1.4, viser 0.2.7,
numpy<2 and open3d, which conflict with what splatpack needs. ``scripts/bootstrap.sh`` installs it with
``--no-deps`` beside the pinned list in ``requirements/constraints.txt`` (see README, "Installing").
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PTH = "splatpack_compat.pth"


class BuildWithPth(build_py):
    """Ship ``splatpack_compat.pth`` at the root of site-packages so it runs at interpreter start."""

    def run(self):
        super().run()
        self.copy_file(PTH, str(Path(self.build_lib) / PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / PTH)]


setup(
    name="splatpack",
    version="0.1.0",
    description="Small, fast, faithful 3D Gaussian splats: compact training, compression, browser viewing",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["splatpack", "splatpack.*", "viewer", "viewer.*"]),
    package_data={"splatpack.feedforward": ["weights/model.pt"]},
    cmdclass={"build_py": BuildWithPth},
    install_requires=[
        "torch>=2.4",
        "torchvision",
        "gsplat==1.5.3",
        "packaging",  # gsplat imports it without declaring it
        "viser==1.1.1",
        "plyfile>=1.0",
        "numpy>=1.24",
        "opencv-python-headless",
        "pytorch-msssim>=1.0",
        "tyro>=0.8",
        "rich>=13",
        "zstandard>=0.22",
        "constriction>=0.4",
        "pillow>=10",
        "tqdm",
    ],
    extras_require={"test": ["pytest", "pytest-timeout", "hypothesis"]},
    entry_points={
        "console_scripts": ["splatpack=splatpack.cli:main"],
        "nerfstudio.method_configs": [
            "splatpack = splatpack.nerfstudio.method:splatpack_method",
            "splatpack-base = splatpack.nerfstudio.method:splatpack_base_method",
            "splatpack-omg = splatpack.nerfstudio.method:splatpack_omg_method",
        ],
    },
)
