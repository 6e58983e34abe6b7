"""The Explorer family: the widget, its state, controls, view, engine work and files."""

from .widget import Explorer

__all__ = ["Explorer"]
