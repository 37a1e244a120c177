"""What a run shows a person: PNG figures (``plots``), Markdown reports
(``markdown``) and the search's verdict in words (``verdict``)."""
