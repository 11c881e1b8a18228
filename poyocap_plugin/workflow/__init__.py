"""The workflow around the plugin: what plans, launches and reports runs of the stock trainer.

Simulation and data preparation, partitions and dataset configs, the table of stages and
arms, the curriculum, Table 3, probe, render and report, the trainer fetch, the preflight,
and the ``poyocap`` command line. It imports the plugin proper; nothing in the plugin
imports it (docs/architecture.md).
"""
