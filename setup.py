"""Packages this repository's code for Beam workers on remote runners.

Dataflow/Flink/Spark workers need `components`, `pipeline` and `trainer` to
unpickle the pipeline's functions; runners pass `--setup_file` pointing here
(pipeline/config.py). Dependencies are not listed: workers run in the
project's container image (Dockerfile) or an environment built from
requirements.lock. Locally the code is on the path through .venv.
"""
import setuptools

setuptools.setup(
    name='pediatric-pneumonia-pipeline',
    version='0.1.0',
    packages=setuptools.find_packages(
        include=['components', 'components.*', 'pipeline', 'pipeline.*',
                 'trainer', 'trainer.*']),
    package_data={'': ['*.pbtxt']},
)
