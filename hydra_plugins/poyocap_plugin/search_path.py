"""Registers the plugin with Hydra before any ``@hydra.main`` function runs.

Hydra imports every module under the ``hydra_plugins`` namespace while it builds the
config search path, which happens before the stock trainer's ``main()`` instantiates the
model with a snapshot of torch_brain's modality registry. Importing
``poyocap_plugin.modalities`` here is what puts the plugin's modalities in that snapshot.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

import poyocap_plugin.modalities  # noqa: F401  (registers the plugin's modalities)

CONFIG_PACKAGE = "pkg://poyocap_plugin.configs"


class PoyocapSearchPathPlugin(SearchPathPlugin):
    """Appends the plugin's configs, so ``--config-name poyocap_*`` needs no --config-dir."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="poyocap-plugin", path=CONFIG_PACKAGE)
