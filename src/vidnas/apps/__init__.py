"""The applications, one module per command: retraining (``train``), the
multi-view test (``evaluate``), ``predict``, ``export``, the comparison and
ablation (``compare``), the ``demo``, and the command line (``cli``,
``data_cli``) over all of them. The search itself is :mod:`vidnas.nas.search`."""
