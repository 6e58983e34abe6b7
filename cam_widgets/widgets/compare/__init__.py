"""The Compare family: the widget, its state, controls, view, engine work and metrics panel."""

from .widget import Compare

__all__ = ["Compare"]
