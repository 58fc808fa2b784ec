"""Executor of RunReport (minimal; figures come next)."""
import json
import os
import time

from absl import logging
import tensorflow as tf
from tfx.dsl.components.base import base_executor

EXAMPLES_KEY = 'examples'
MODEL_RUN_KEY = 'model_run'
MODEL_KEY = 'model'
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
BASELINE_KEY = 'baseline_model'
PUSHED_MODEL_KEY = 'pushed_model'
REPORTS_DIR_KEY = 'reports_dir'
PIPELINE_NAME_KEY = 'pipeline_name'


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    run_id = time.strftime('%Y%m%d-%H%M%S', time.gmtime())
    folder = os.path.join(exec_properties[REPORTS_DIR_KEY], run_id)
    tf.io.gfile.makedirs(folder)
    summary = {key: [a.uri for a in artifacts]
               for key, artifacts in input_dict.items()}
    with tf.io.gfile.GFile(os.path.join(folder, 'report.html'), 'w') as f:
      f.write('<pre>' + json.dumps(summary, indent=1) + '</pre>')
    logging.info('Run report: %s', os.path.join(folder, 'report.html'))
