"""ImageExampleGen on a tree of DICOM files built from real X-rays (issue 12):
the executor runs once; the tests check what each file became.

Kept: MONOCHROME2 and MONOCHROME1, a 16-bit file with rescale and window in
JPEG 2000, an RLE file without PatientID (its name names the patient), a
scanner-named file, a real JPEG beside them. Dropped as a duplicate: the
same pixels in another transfer syntax (dedup hashes the PNG). Rejected: a
structured report, a multi-frame file, a CT, a JPEG named .dcm (the same
bytes as the kept JPEG, which stays kept), a PNEUMONIA file whose name gives
no subtype. Every file carries a fake identity; none
of it reaches any output file or log line.
"""
import gzip
import hashlib
import json
import logging
import os
import pathlib
import shutil
import warnings

from absl import logging as absl_logging
import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils

import predict
from components.image_example_gen import component
from components.image_example_gen import ingestion_report
from contract import names as constants
from testing import dicom as built

pytestmark = pytest.mark.timeout(300)

# Kept: path -> (patient_id, subtype); pixels checked in _EXPECTED.
KEPT = {
    'NORMAL/IM-0115-0001.dcm': ('MRN-1001', 'normal'),
    'NORMAL/1.2.826.0.1.3680043.8.498.1.dcm': ('MRN-1002', 'normal'),
    'PNEUMONIA/person1_bacteria_1.dcm': ('MRN-1003', 'bacteria'),
    'PNEUMONIA/person2_virus_1.dcm': ('person2', 'virus'),
    'NORMAL/IM-0200-0001.jpeg': ('IM-0200', 'normal'),
}
DUPLICATE = ('NORMAL/copies/IM-0115-0002.dcm', 'NORMAL/IM-0115-0001.dcm')
REJECTED = {
    'PNEUMONIA/person9_virus_1.dcm': 'without PixelData',
    'PNEUMONIA/person10_virus_1.dcm': 'multi-frame DICOM (2 frames)',
    'NORMAL/IM-0300-0001.dcm': "Modality 'CT'",
    'NORMAL/IM-0301-0001.dcm': "not a DICOM file: no 'DICM' prefix",
    'PNEUMONIA/1.2.826.0.1.3680043.8.498.9.dcm': 'does not say bacteria',
}


class _Lines(logging.Handler):
  def __init__(self):
    super().__init__(logging.DEBUG)
    self.lines = []

  def emit(self, record):
    self.lines.append(self.format(record))


def _build(root: pathlib.Path):
  """Writes the tree; returns path -> expected 8-bit pixels of kept files."""
  pixels = [built.real_gray(i)[1] for i in range(4)]
  sick = built.real_gray(0, 'PNEUMONIA')[1]
  expected = {}

  def put(rel, ds, syntax='explicit'):
    built.write(ds, root / rel, syntax)

  put('NORMAL/IM-0115-0001.dcm', built.dataset(pixels[0], 'MRN-1001'))
  put(DUPLICATE[0], built.dataset(pixels[0], 'MRN-1001'), 'rle')
  expected['NORMAL/IM-0115-0001.dcm'] = pixels[0]
  put('NORMAL/1.2.826.0.1.3680043.8.498.1.dcm',
      built.dataset(255 - pixels[1], 'MRN-1002', photometric='MONOCHROME1',
                    modality='CR'))
  expected['NORMAL/1.2.826.0.1.3680043.8.498.1.dcm'] = pixels[1]
  ds, windowed = built.windowed_16bit(sick)
  ds.PatientID = 'MRN-1003'
  put('PNEUMONIA/person1_bacteria_1.dcm', ds, 'j2k')
  expected['PNEUMONIA/person1_bacteria_1.dcm'] = windowed
  put('PNEUMONIA/person2_virus_1.dcm',
      built.dataset(pixels[2], patient_id=None), 'rle')
  expected['PNEUMONIA/person2_virus_1.dcm'] = pixels[2]
  jpeg = sorted(pathlib.Path(built.images.DATA_ROOT, 'kermany-224',
                             'chest_xray', 'train', 'NORMAL').glob('*.jpeg'))[5]
  shutil.copyfile(jpeg, root / 'NORMAL/IM-0200-0001.jpeg')

  built.report(root / 'PNEUMONIA/person9_virus_1.dcm')
  put('PNEUMONIA/person10_virus_1.dcm', built.dataset(pixels[3], frames=2))
  put('NORMAL/IM-0300-0001.dcm', built.dataset(pixels[3], modality='CT'))
  (root / 'NORMAL/IM-0301-0001.dcm').write_bytes(jpeg.read_bytes())
  put('PNEUMONIA/1.2.826.0.1.3680043.8.498.9.dcm',
      built.dataset(sick[::-1], 'MRN-1009'))
  return expected


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """(root, expected pixels, report, examples by path, output folder, log
  lines) of one executor run."""
  root = tmp_path_factory.mktemp('dicom') / 'data'
  expected = _build(root)
  out = tmp_path_factory.mktemp('dicom_out') / 'Examples'
  handler, logger = _Lines(), logging.getLogger()
  level = logger.level
  logger.addHandler(handler)
  logger.setLevel(logging.INFO)
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    with warnings.catch_warnings(record=True) as warned:
      warnings.simplefilter('always')
      examples = component.ingest_outside_pipeline(str(root), str(out))
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)
  handler.lines += [str(w.message) for w in warned]
  with open(ingestion_report.report_path(examples.uri)) as f:
    report = json.load(f)
  found = {}
  for split in artifact_utils.decode_split_names(examples.split_names):
    files = tf.io.gfile.glob(os.path.join(examples.uri, f'Split-{split}',
                                          '*.gz'))
    for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
      feature = tf.train.Example.FromString(record.numpy()).features.feature
      found[feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode()
            ] = feature
  return root, expected, report, found, out, handler.lines


def _text(feature, key):
  return feature[key].bytes_list.value[0].decode()


def test_each_image_is_kept_once_with_its_patient_and_subtype(run):
  _, _, report, found, _, _ = run
  assert sorted(found) == sorted(KEPT)
  for path, (patient, subtype) in KEPT.items():
    feature = found[path]
    assert (_text(feature, constants.PATIENT_ID_KEY),
            _text(feature, constants.SUBTYPE_KEY)) == (patient, subtype), path
  assert report['counts']['all']['total'] == len(KEPT)
  assert report['duplicates'] == [{'path': DUPLICATE[0],
                                   'duplicate_of': DUPLICATE[1]}]


def test_a_dicom_example_holds_the_png_predict_sends(run):
  root, expected, _, found, _, _ = run
  for path, pixels in expected.items():
    feature = found[path]
    raw = feature[constants.IMAGE_KEY].bytes_list.value[0]
    assert raw.startswith(b'\x89PNG')
    # Serving converts the same file into the same bytes.
    assert raw == predict.read_image(str(root / path)), path
    assert _text(feature, constants.SHA256_KEY) == hashlib.sha256(
        raw).hexdigest()
    decoded = tf.io.decode_png(raw).numpy()
    assert decoded.shape == (*pixels.shape, 1)
    assert np.abs(decoded[..., 0].astype(int) - pixels).max() <= 1, path
    assert [feature[key].int64_list.value[0] for key in (
        constants.HEIGHT_KEY, constants.WIDTH_KEY, constants.CHANNELS_KEY)
            ] == [*pixels.shape, 1]


def test_refused_dicom_files_are_rejected_with_their_reason(run):
  _, _, report, _, _, _ = run
  reasons = {r['path']: r['reason'] for r in report['rejected']}
  assert sorted(reasons) == sorted(REJECTED)
  for path, needle in REJECTED.items():
    assert needle in reasons[path], (path, reasons[path])


def test_no_identifying_tag_reaches_any_output_or_log(run):
  root, _, _, _, out, lines = run
  assert built.appears((root / 'NORMAL/IM-0115-0001.dcm').read_bytes())
  looked = 0
  for folder, _, names in os.walk(out):
    for name in names:
      raw = pathlib.Path(folder, name).read_bytes()
      if name.endswith('.gz'):
        raw = gzip.decompress(raw)
      assert not built.appears(raw), os.path.join(folder, name)
      looked += 1
  assert looked >= 2  # the report and the TFRecords at least
  assert any('Ingested' in line for line in lines)  # the log was heard
  assert not built.appears('\n'.join(lines).encode())
