"""What a run shows a person: PNG figures (``plots``) and Markdown reports
(``markdown``)."""
