"""Tests of components.image_example_gen.naming over every real name form."""
import csv
import os

import pytest

from components.image_example_gen import naming
from testing.images import DATA_ROOT
from testing.images import require_data

MANIFEST = os.path.join(DATA_ROOT, 'kermany-original-sample', 'MANIFEST.csv')
KERMANY_224_TRAIN = os.path.join(DATA_ROOT, 'kermany-224', 'chest_xray',
                                 'train')


@pytest.mark.parametrize('file_name, patient_id, subtype', [
    # PNEUMONIA: person<N>_bacteria|virus_<K>[_<J>].
    ('person1619_bacteria_4267.jpeg', 'person1619', 'bacteria'),
    ('person1619_bacteria_4268.jpeg', 'person1619', 'bacteria'),
    ('person1_bacteria_1.jpeg', 'person1', 'bacteria'),
    ('person1_virus_6.jpeg', 'person1', 'virus'),
    ('person447_virus_921_1.jpeg', 'person447', 'virus'),
    ('person447_virus_921_1_2.jpeg', 'person447', 'virus'),
    # Download suffixes, with and without a space, one or more digits.
    ('person301_virus_622(1).jpeg', 'person301', 'virus'),
    ('person1_virus_6 (1).jpeg', 'person1', 'virus'),
    ('person1_virus_6 (12).jpeg', 'person1', 'virus'),
    ('person1619_bacteria_4267 (2).jpeg', 'person1619', 'bacteria'),
    # NORMAL: IM-<N>-<K>[-<J>] and NORMAL2-IM-<N>-<K>[-<J>].
    ('IM-0001-0001.jpeg', 'IM-0001', 'normal'),
    ('IM-0001-0001-0002.jpeg', 'IM-0001', 'normal'),
    ('IM-0117-0001.jpeg', 'IM-0117', 'normal'),
    ('IM-0001-0001(1).jpeg', 'IM-0001', 'normal'),
    ('IM-0001-0001 (1).jpeg', 'IM-0001', 'normal'),
    ('NORMAL2-IM-1427-0001.jpeg', 'NORMAL2-IM-1427', 'normal'),
    ('NORMAL2-IM-1102-0001-0002.jpeg', 'NORMAL2-IM-1102', 'normal'),
    ('NORMAL2-IM-1427-0001 (1).jpeg', 'NORMAL2-IM-1427', 'normal'),
    # Case variants: ids come out in canonical case, subtypes in lower case.
    ('PERSON12_BACTERIA_3.JPEG', 'person12', 'bacteria'),
    ('Person12_Virus_3.jpeg', 'person12', 'virus'),
    ('im-0001-0001.jpeg', 'IM-0001', 'normal'),
    ('Im-0001-0001-0002.JPEG', 'IM-0001', 'normal'),
    ('normal2-im-1427-0001.jpeg', 'NORMAL2-IM-1427', 'normal'),
    ('Normal2-Im-1427-0001.jpeg', 'NORMAL2-IM-1427', 'normal'),
    # Other extensions.
    ('person12_bacteria_3.jpg', 'person12', 'bacteria'),
    ('person12_virus_3.png', 'person12', 'virus'),
    ('person12_virus_3.PNG', 'person12', 'virus'),
    ('IM-0001-0001.JPG', 'IM-0001', 'normal'),
    ('IM-0001-0001.png', 'IM-0001', 'normal'),
    ('NORMAL2-IM-1427-0001.JPEG', 'NORMAL2-IM-1427', 'normal'),
    # Folders in front: only the base name counts.
    ('chest_xray/train/PNEUMONIA/person1619_bacteria_4267.jpeg',
     'person1619', 'bacteria'),
    ('chest_xray/chest_xray/test/NORMAL/IM-0001-0001.jpeg', 'IM-0001',
     'normal'),
    ('/data/chest_xray/val/NORMAL/NORMAL2-IM-1427-0001.jpeg',
     'NORMAL2-IM-1427', 'normal'),
    ('__MACOSX/PNEUMONIA/person1_virus_6 (1).jpeg', 'person1', 'virus'),
    # A folder that itself looks like a patient does not leak into the id.
    ('IM-0002-0001/person3_bacteria_7.jpeg', 'person3', 'bacteria'),
])
def test_parse_file_name_known_forms(file_name, patient_id, subtype):
  parsed = naming.parse_file_name(file_name)
  assert parsed == naming.ParsedName(patient_id, subtype)
  assert parsed.patient_id == patient_id
  assert parsed.subtype == subtype
  assert parsed.subtype in ('normal', 'bacteria', 'virus')


def test_parse_file_name_person_number_is_normalised():
  # Leading zeros do not make a second patient.
  assert naming.parse_file_name('person007_bacteria_1.jpeg').patient_id == (
      'person7')
  assert naming.parse_file_name('person7_virus_2.jpeg').patient_id == 'person7'


def test_parse_file_name_keeps_the_normal2_cohort_apart():
  # IM-1427 and NORMAL2-IM-1427 are different children.
  assert (naming.parse_file_name('IM-1427-0001.jpeg').patient_id !=
          naming.parse_file_name('NORMAL2-IM-1427-0001.jpeg').patient_id)


def test_parse_file_name_pools_kaggle_split_folders():
  # Patient numbers restart in Kaggle's test split; grouping is the safe side.
  train = naming.parse_file_name('chest_xray/train/PNEUMONIA/'
                                 'person1_bacteria_1.jpeg')
  test = naming.parse_file_name('chest_xray/test/PNEUMONIA/'
                                'person1_virus_8.jpeg')
  assert train.patient_id == test.patient_id == 'person1'
  assert (train.subtype, test.subtype) == ('bacteria', 'virus')


@pytest.mark.parametrize('file_name', [
    'scan_17.jpeg',
    'person_bacteria.jpeg',
    'IM-.jpeg',
    'IM-0001.jpeg',
    'IM-0001-.jpeg',
    'IM-AB-0001.jpeg',
    'NORMAL3-IM-0001-0001.jpeg',
    'NORMAL2-0001-0001.jpeg',
    'person1_bacteria.jpeg',
    'person1_fungal_2.jpeg',
    'person1_bacteria_1_.jpeg',
    'personA_virus_1.jpeg',
    'xperson1_bacteria_1.jpeg',
    'person1_bacteria_1 copy.jpeg',
    'person1_bacteria_1 (a).jpeg',
    '.jpeg',
    'chest_xray/train/PNEUMONIA/scan_17.jpeg',
])
def test_parse_file_name_rejects_unknown_names(file_name):
  with pytest.raises(naming.UnknownNameError) as raised:
    naming.parse_file_name(file_name)
  # The message names the file so the ingestion report can show it.
  assert repr(file_name) in str(raised.value)
  assert isinstance(raised.value, ValueError)


def test_every_manifest_row_parses_to_its_patient_id():
  require_data(MANIFEST)
  with open(MANIFEST, newline='') as f:
    rows = list(csv.DictReader(f))
  assert rows, f'{MANIFEST} has no rows'
  assert {'path', 'patient_id', 'label'} <= set(rows[0])
  wrong = []
  for row in rows:
    try:
      parsed = naming.parse_file_name(row['path'])
    except naming.UnknownNameError as e:
      wrong.append((row['path'], row['patient_id'], str(e)))
      continue
    expected_normal = row['label'] == 'NORMAL'
    if (parsed.patient_id != row['patient_id'] or
        (parsed.subtype == 'normal') != expected_normal):
      wrong.append((row['path'], row['patient_id'], parsed))
  assert not wrong, f'{len(wrong)} of {len(rows)} manifest rows: {wrong[:10]}'
  assert {row['label'] for row in rows} == {'NORMAL', 'PNEUMONIA'}


def test_every_kermany_224_train_name_agrees_with_its_folder():
  require_data(KERMANY_224_TRAIN)
  allowed = {'NORMAL': {'normal'}, 'PNEUMONIA': {'bacteria', 'virus'}}
  seen = {}
  wrong = []
  for folder, subtypes in allowed.items():
    names = os.listdir(os.path.join(KERMANY_224_TRAIN, folder))
    for name in names:
      if not naming.is_image_name(name):
        wrong.append((folder, name, 'not an image name'))
        continue
      try:
        parsed = naming.parse_file_name(name)
      except naming.UnknownNameError as e:
        wrong.append((folder, name, str(e)))
        continue
      if parsed.subtype not in subtypes:
        wrong.append((folder, name, parsed.subtype))
      seen.setdefault(folder, set()).add(parsed.subtype)
  assert not wrong, f'{len(wrong)} files: {wrong[:10]}'
  # Both folders were read and PNEUMONIA holds both subtypes.
  assert seen == {'NORMAL': {'normal'}, 'PNEUMONIA': {'bacteria', 'virus'}}


@pytest.mark.parametrize('parts, label', [
    (['PNEUMONIA', 'x', 'normal'], 0),
    (['NORMAL', 'x', 'Pneumonia'], 1),
    (['chest_xray', 'train', 'NORMAL'], 0),
    (['chest_xray', 'train', 'PNEUMONIA'], 1),
    (['chest_xray', 'chest_xray', 'test', 'PNEUMONIA', 'deep', 'er'], 1),
    (['normal'], 0),
    (['Normal'], 0),
    (['pneumonia'], 1),
    (['PNEUMONIA'], 1),
    (['PNEUMONIA', 'NORMAL'], 0),
    ([], None),
    (['chest_xray', 'train'], None),
    (['NORMAL2'], None),
    (['pneumonia_cases', 'normals'], None),
    (['NORMAL ', 'x'], None),
])
def test_label_of(parts, label):
  assert naming.label_of(parts) == label


def test_label_of_accepts_tuples():
  assert naming.label_of(('a', 'NORMAL', 'b')) == 0


@pytest.mark.parametrize('name, ignored', [
    ('__MACOSX', True),
    ('__pycache__', True),
    ('.git', True),
    ('.hidden', True),
    ('.', True),
    ('NORMAL', False),
    ('PNEUMONIA', False),
    ('chest_xray', False),
    ('train', False),
    ('_single_underscore', False),
    ('MACOSX', False),
])
def test_is_ignored_folder(name, ignored):
  assert naming.is_ignored_folder(name) is ignored


@pytest.mark.parametrize('name, is_image', [
    ('IM-0001-0001.jpeg', True),
    ('IM-0001-0001.JPEG', True),
    ('IM-0001-0001.Jpeg', True),
    ('person1_virus_6.jpg', True),
    ('person1_virus_6.JPG', True),
    ('person1_virus_6.png', True),
    ('person1_virus_6.PNG', True),
    ('person1_virus_6 (1).jpeg', True),
    ('scan_17.jpeg', True),  # a name problem, not an extension problem
    ('person1_virus_6.gif', False),
    ('person1_virus_6.bmp', False),
    ('notes.txt', False),
    ('IM-0001-0001.jpeg.txt', False),
    ('IM-0001-0001.jpeg.bak', False),
    ('jpeg', False),
    ('.DS_Store', False),
    ('._IM-0001-0001.jpeg', False),
    ('.jpeg', False),
    ('IM-0001-0001.dcm', True),
    ('1.2.840.113619.2.55.DCM', True),
    ('IM-0001-0001.dcm.txt', False),
    ('._IM-0001-0001.dcm', False),
])
def test_is_image_name(name, is_image):
  assert naming.is_image_name(name) is is_image


@pytest.mark.parametrize('name, label, patient_id, parsed', [
    # PatientID wins over the name's patient; the name still gives the
    # subtype.
    ('person7_virus_3.dcm', 1, 'MRN-88', ('MRN-88', 'virus')),
    ('IM-0004-0001.dcm', 0, 'MRN-88', ('MRN-88', 'normal')),
    # No PatientID: the name rules, as for a JPEG.
    ('person7_virus_3.dcm', 1, '', ('person7', 'virus')),
    # A scanner's name with a PatientID: NORMAL is 'normal'.
    ('1.2.840.5.dcm', 0, 'MRN-88', ('MRN-88', 'normal')),
])
def test_parse_dicom_name(name, label, patient_id, parsed):
  assert tuple(naming.parse_dicom_name(name, label, patient_id)) == parsed


@pytest.mark.parametrize('name, label, patient_id, needle', [
    ('1.2.840.5.dcm', 0, '', 'has no PatientID'),
    ('1.2.840.5.dcm', 1, 'MRN-88', 'does not say bacteria or virus'),
])
def test_parse_dicom_name_refuses(name, label, patient_id, needle):
  with pytest.raises(naming.UnknownNameError, match=needle):
    naming.parse_dicom_name(name, label, patient_id)
