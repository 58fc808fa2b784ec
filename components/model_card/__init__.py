"""The model card: what the model is for, its data, metrics with 95 %
confidence intervals, limitations and ethics, from a run's own artifacts.
Written beside the run report (RunReport) and into a pushed version's
assets.extra/ (the Pusher)."""
