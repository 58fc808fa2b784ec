"""Runs a compiled KFP v2 pipeline's tasks here, as open-source Kubeflow
Pipelines' v2 driver and launcher would start their containers: run.py
schedules and starts them, driver.py builds each executor input and records
its outputs as KFP does, prewarm.py shares one interpreter start-up between
tasks when asked."""
from testing.kfp_launcher.driver import KfpError
from testing.kfp_launcher.driver import load_spec
from testing.kfp_launcher.run import LocalKfpRun
from testing.kfp_launcher.run import TaskRun

__all__ = ['KfpError', 'LocalKfpRun', 'TaskRun', 'load_spec']
