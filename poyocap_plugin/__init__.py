"""POYO-CAP as a torch_brain plugin."""

__version__ = "0.1.0"
