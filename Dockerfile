# The image every task of the Kubeflow pipeline runs in (kubeflow_runner.py
# --image): TFX at the version requirements.lock pins, the packages our code
# imports that TFX does not bring, at the lock's versions, and our code on
# PYTHONPATH. KFP tasks run e.g.
#   python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor \
#     --executor_class_path components.evaluator.executor.Executor ...
# or the Trainer with run_fn trainer.run.run_fn; the TFX image's ENTRYPOINT
# is kept. tests/test_dockerfile.py checks this file against the lock.
FROM tensorflow/tfx:1.16.0

WORKDIR /pipeline

# The lock also constrains what these pull in (albucore, pydantic, ...).
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir --constraint requirements.lock \
      albumentations==2.0.8 \
      opencv-python-headless==4.11.0.86 \
      kaggle==1.7.4.5 \
      matplotlib==3.10.9 \
      pydicom==3.0.2 \
      pylibjpeg==2.1.0 \
      pylibjpeg-libjpeg==2.2.0 \
      pylibjpeg-openjpeg==2.3.0

# Code last: it changes most often.
COPY setup.py local_runner.py kubeflow_runner.py predict.py ./
COPY schemas/ schemas/
COPY contract/ contract/
COPY pipeline/ pipeline/
COPY runners/ runners/
COPY components/ components/
COPY trainer/ trainer/

ENV PYTHONPATH=/pipeline
