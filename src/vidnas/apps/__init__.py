"""The applications over the runs: the multi-view test (``evaluate``),
``predict``, ``export``, the comparison and ablation (``compare``), the
``demo``, and the command line (``cli``, ``data_cli``) over all of them. The
search and retraining runs themselves are :mod:`vidnas.loops`."""
