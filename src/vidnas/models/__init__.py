"""Networks as data and as modules: the stack-layer ops and blocks (``ops``), the
family of networks a search explores (``space``), one network as JSON
(``spec``), the module it builds (``network``), its analytic cost (``cost``),
the built-in architectures (``archs``) and a trained network's self-describing
file (``model_file``). Nothing here searches or trains."""
