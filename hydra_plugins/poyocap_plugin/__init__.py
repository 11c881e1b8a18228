"""Hydra start-up hook of poyocap-plugin (Hydra imports every module under hydra_plugins)."""
