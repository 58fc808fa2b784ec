"""Packages this repository's code for Beam workers on remote runners.

Dataflow/Flink/Spark workers need `contract`, `components`, `trainer` and `pipeline` to
unpickle the pipeline's functions; runners pass `--setup_file` pointing here
(contract/settings.py). Dependencies are not listed: workers run in the
project's container image (Dockerfile) or an environment built from
requirements.lock. Locally the code is on the path through .venv.
"""
import setuptools

setuptools.setup(
    name='pediatric-pneumonia-pipeline',
    version='0.1.0',
    packages=setuptools.find_packages(
        include=['contract', 'contract.*', 'components', 'components.*',
                 'trainer', 'trainer.*', 'pipeline', 'pipeline.*']),
    package_data={'': ['*.pbtxt'], 'components.run_report': ['templates/*']},
)
