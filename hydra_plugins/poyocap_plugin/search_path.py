"""Puts the plugin's configs on every Hydra app's search path, and nothing else.

Hydra imports every module under the ``hydra_plugins`` namespace when any Hydra app
starts, so this module registers no modality: the plugin's configs declare the Hydra
callback that does (:class:`poyocap_plugin.hydra_callback.RegisterModalities`), and a
stock config sees torch_brain's registry unchanged.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

CONFIG_PACKAGE = "pkg://poyocap_plugin.configs"


class PoyocapSearchPathPlugin(SearchPathPlugin):
    """Appends the plugin's configs, so ``--config-name poyocap_*`` needs no --config-dir."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="poyocap-plugin", path=CONFIG_PACKAGE)
