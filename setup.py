"""Shim for tools that still call setup.py: cam_widgets' metadata is in pyproject.toml."""
from setuptools import setup

setup()
