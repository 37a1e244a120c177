"""The method of the architecture search: the relaxed supernet and its expected
cost (``supernet``), the cost penalty (``penalty``), alpha and beta's step
(``architect``), reading one architecture out of alpha and beta (``derive``),
and whether the search decided (``decisiveness``, ``heldout``, ``verdict``).
The loop that runs a search is :mod:`vidnas.loops.search`."""
