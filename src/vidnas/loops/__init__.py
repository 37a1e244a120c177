"""The runs: a search (``search``, with its data, per-epoch record and end in
``search_data``, ``search_meter``, ``search_finish``) and a retraining
(``train``), each a resumable :class:`vidnas.engine.loop.RunLoop` that writes
one run directory."""
