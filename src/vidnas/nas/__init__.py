"""The architecture search: the relaxed supernet and its expected cost
(``supernet``),
reading one architecture out of alpha and beta (``derive``), and the bilevel
search loop that ties them together (``search``)."""
