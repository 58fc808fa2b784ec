"""TF Serving warm-up requests carried inside the exported SavedModel.

TF Serving initialises parts of the runtime lazily, so the first request
after a version loads is slow. With `--enable_model_warmup` (on by default
in tensorflow_model_server) it replays the records of
`assets.extra/tf_serving_warmup_requests` at load time, before the version
is served. Its rules (tensorflow.org/tfx/serving/saved_model_warmup, and
WarmupConsts in tensorflow_serving/servables/tensorflow/
saved_model_warmup_util.h): exactly that file name in `assets.extra/`, an
uncompressed TFRecord of `PredictionLog`s, at most 1000 records, requests
representative of real traffic. A PredictLog's request runs against its
model_spec.signature_name (the model name is not checked at warm-up: the
deployment names the model).

Here: one PredictRequest per image (a batch of one, as clients such as
predict.py send), for `serving_default`, with real image bytes from the
eval split. Every copy of the model keeps the file: the Pusher, DeployedModel
and SiteCalibration copy the whole folder or all of `assets.extra/`.
"""
import os
from typing import List, Sequence

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from contract import layout
from contract import names as constants

# Images replayed at load: enough to run every op of the graph on real data,
# few enough to keep the SavedModel small.
IMAGES = 4
# TF Serving refuses a warm-up file with more records (WarmupConsts).
MAX_RECORDS = 1000


def first_images(example_files: Sequence[str], count: int = IMAGES
                 ) -> List[bytes]:
  """The image bytes of the first `count` tf.Examples of gzip TFRecords
  (in the files' order, so a run repeats)."""
  images = []
  records = tf.data.TFRecordDataset(list(example_files),
                                    compression_type='GZIP').take(count)
  for record in records.as_numpy_iterator():
    example = tf.train.Example.FromString(record)
    images.append(example.features.feature[
        constants.IMAGE_KEY].bytes_list.value[0])
  return images


def predict_request(images: Sequence[bytes]) -> predict_pb2.PredictRequest:
  """A Predict request for serving_default with these image bytes (what a
  gRPC client sends; the README's example builds the same)."""
  request = predict_pb2.PredictRequest()
  request.model_spec.signature_name = constants.SERVING_SIGNATURE
  request.inputs[constants.SERVING_INPUT].CopyFrom(
      tf.make_tensor_proto(list(images), dtype=tf.string,
                           shape=[len(images)]))
  return request


def write(export_dir: str, images: Sequence[bytes]) -> str:
  """Writes one warm-up record per image into the SavedModel at
  export_dir; returns the file's path."""
  if not 0 < len(images) <= MAX_RECORDS:
    raise ValueError(f'{len(images)} warm-up images; TF Serving takes 1 to '
                     f'{MAX_RECORDS} records')
  path = os.path.join(export_dir, layout.WARMUP_REQUESTS_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:  # uncompressed, as TF Serving reads
    for image in images:
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(
              request=predict_request([image])))
      writer.write(log.SerializeToString())
  return path

