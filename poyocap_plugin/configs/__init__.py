"""Hydra configs of poyocap-plugin, found by Hydra through ``pkg://poyocap_plugin.configs``."""
