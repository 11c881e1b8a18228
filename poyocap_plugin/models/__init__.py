"""The plugin's models."""

from poyocap_plugin.models.capoyo import CAPOYO

__all__ = ["CAPOYO"]
