"""predict.py refuses, per image, what ingestion would reject (issue 11):
decompression bombs, images below the minimum size, EXIF-rotated images,
FIFOs and links to devices; the other images are still classified.

The model is a two-layer Keras model exported by trainer.signatures (no
training); predict.main runs in this process.
"""
import json
import os

import pytest

import predict
from testing import hostile
from testing import serving_folders

pytestmark = pytest.mark.timeout(300)  # a FIFO opened would block

SIZE = 32


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  return serving_folders.mean_gray_model(
      tmp_path_factory.mktemp('refusals') / 'model', SIZE)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Name -> (path, part of the error, or None for a classified image)."""
  folder = tmp_path_factory.mktemp('refusal_images')
  cases = {
      'good': (hostile.jpeg(70, 80), None),
      'bomb': (hostile.bomb_png(23000, 23000), 'too many pixels'),
      'jpeg_bomb': (hostile.with_jpeg_size(hostile.jpeg(64, 64), 8000, 8000),
                    'declares 8000 x 8000 = 64,000,000'),
      'tiny': (hostile.png(1, 1), 'too small: 1 x 1 pixels'),
      'rotated': (hostile.with_exif_orientation(hostile.jpeg(70, 80), 6),
                  'EXIF orientation 6'),
  }
  out = {}
  for name, (raw, error) in cases.items():
    path = folder / f'{name}.jpeg'
    path.write_bytes(raw)
    out[name] = (path, error)
  os.mkfifo(folder / 'fifo.jpeg')
  out['fifo'] = (folder / 'fifo.jpeg', 'not a regular file: a FIFO')
  (folder / 'zero.jpeg').symlink_to('/dev/zero')
  out['zero'] = (folder / 'zero.jpeg', 'a character device')
  (folder / 'broken.jpeg').symlink_to('/nonexistent/x')
  out['broken'] = (folder / 'broken.jpeg', 'broken symbolic link')
  return out


def test_read_image_refuses_with_the_reason_ingestion_gives(files):
  for name, (path, error) in files.items():
    if error is None:
      assert predict.read_image(str(path)) == path.read_bytes()
      continue
    with pytest.raises(ValueError, match=error):
      predict.read_image(str(path))


def test_each_refused_image_gets_its_error_line_the_rest_an_answer(
    model_dir, files, capsys):
  names = list(files)
  status = predict.main(['--model', str(model_dir),
                         *[str(files[name][0]) for name in names]])
  lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert status == predict.EXIT_IMAGE_FAILED
  assert [line['path'] for line in lines] == [str(files[n][0]) for n in names]
  for name, line in zip(names, lines):
    error = files[name][1]
    if error is None:
      assert 0.0 <= line['pneumonia_probability'] <= 1.0, line
      assert line['label'] in ('NORMAL', 'PNEUMONIA')
    else:
      assert set(line) == {'path', 'error'}, line
      assert error in line['error'], line
