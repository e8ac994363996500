"""Tuna: a native unified multimodal model with a unified visual representation."""

from tuna.config import PRESETS, TunaConfig, get_preset

__all__ = ["PRESETS", "TunaConfig", "get_preset"]
__version__ = "0.1.0"
