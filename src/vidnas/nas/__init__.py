"""The architecture search: the relaxed supernet and its expected cost
(``supernet``), the architecture step and its sampling modes (``architect``),
reading one architecture out of alpha and beta (``derive``), and the bilevel
search loop that ties them together (``search``)."""
