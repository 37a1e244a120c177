"""What every run shares, whatever it trains: device, precision and random state
(``runtime``), atomic files and safe checkpoints (``checkpoint``), the run
directory and its lifecycle (``rundir``), and the steps of a training loop
(``steps``). Nothing here knows about architectures or videos."""
