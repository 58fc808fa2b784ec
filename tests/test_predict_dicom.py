"""predict.py on DICOM files built from real X-rays (issue 12): each is
converted as ingestion converts it (MONOCHROME1 inverted, rescale and window
applied) and classified like the PNG of the same pixels; the files
ingestion refuses get their reason; no identifying tag reaches stdout or
stderr.

The model is a two-layer Keras model exported by trainer.signatures (no
training), as in test_predict_refusals; predict.main runs in this process.
"""
import json

import pytest
import tensorflow as tf

import predict
from testing import dicom as built
from testing import serving_folders

pytestmark = pytest.mark.timeout(300)

SIZE = 32


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  return serving_folders.mean_gray_model(
      tmp_path_factory.mktemp('dicom_model') / 'model', SIZE)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Name -> (path, the PNG of its expected pixels, or the error's part)."""
  folder = tmp_path_factory.mktemp('dicom_images')
  _, source = built.real_gray(3)
  ds, windowed = built.windowed_16bit(source)
  png = lambda pixels: tf.io.encode_png(pixels[..., None]).numpy()  # noqa
  cases = {
      'mono1': (built.dataset(255 - source, photometric='MONOCHROME1'),
                'explicit', png(source)),
      'windowed_j2k': (ds, 'j2k', png(windowed)),
      'rle': (built.dataset(source, modality='CR'), 'rle', png(source)),
      'frames': (built.dataset(source, frames=2), 'explicit', 'multi-frame'),
      'ct': (built.dataset(source, modality='CT'), 'explicit',
             "Modality 'CT'"),
  }
  out = {}
  for name, (dataset, syntax, expected) in cases.items():
    out[name] = (built.write(dataset, folder / f'{name}.dcm', syntax),
                 expected)
  out['report'] = (built.report(folder / 'report.dcm'), 'without PixelData')
  (folder / 'jpeg.dcm').write_bytes(png(source))
  out['jpeg'] = (folder / 'jpeg.dcm', "no 'DICM' prefix")
  return out


def test_dicom_files_are_classified_like_the_png_of_their_pixels(
    model_dir, files, tmp_path, capfd):
  names = list(files)
  references = []
  for name in names:
    expected = files[name][1]
    if isinstance(expected, bytes):
      references.append(tmp_path / f'{name}.png')
      references[-1].write_bytes(expected)
  status = predict.main(['--model', str(model_dir),
                         *[str(files[name][0]) for name in names],
                         *map(str, references)])
  captured = capfd.readouterr()
  lines = [json.loads(line) for line in captured.out.splitlines()]
  assert status == predict.EXIT_IMAGE_FAILED
  assert len(lines) == len(names) + len(references)
  by_path = {line['path']: line for line in lines}
  for name in names:
    line, expected = by_path[str(files[name][0])], files[name][1]
    if isinstance(expected, bytes):
      reference = by_path[str(tmp_path / f'{name}.png')]
      assert line['pneumonia_probability'] == pytest.approx(
          reference['pneumonia_probability'], abs=1e-4), name
      assert line['label'] == reference['label']
    else:
      assert set(line) == {'path', 'error'}, line
      assert expected in line['error'], line
  assert not built.appears((captured.out + captured.err).encode())
  # The files do carry the identity that must not come out.
  assert built.appears(files['mono1'][0].read_bytes())


def test_read_image_sends_the_png_ingestion_stores(files):
  assert predict.read_image(str(files['mono1'][0])) == files['mono1'][1]


def test_a_folder_stands_for_its_dicom_files_too(files):
  folder = files['mono1'][0].parent
  assert set(predict.expand([str(folder)])) == {
      str(path) for path, _ in files.values()}
