"""What a Kermany chest X-ray path tells us: label, patient and subtype.

Real file names (Kaggle ``paultimothymooney/chest-xray-pneumonia``):

* ``person<N>_bacteria_<K>.jpeg`` / ``person<N>_virus_<K>[_<J>].jpeg``
  (PNEUMONIA; one child can have bacteria and virus files),
* ``IM-<N>-<K>[-<J>].jpeg`` and ``NORMAL2-IM-<N>-<K>[-<J>].jpeg`` (NORMAL),
* any of these with a download suffix such as `` (1)`` or ``(1)``;
* DICOM files (``.dcm``) the same, or any name when they carry a PatientID
  (`parse_dicom_name`).

The patient id ignores Kaggle's own train/val/test folders: patient numbers
restart in its test split, and treating equal names as one child is the safe
side of a leakage-free split.
"""
import posixpath
import re
from typing import NamedTuple, Optional, Sequence

from contract import names as constants

_DOWNLOAD_SUFFIX = re.compile(r'\s*\(\d+\)$')
_PERSON = re.compile(r'^person(\d+)_(bacteria|virus)_\d+(?:_\d+)*$', re.I)
_IM = re.compile(r'^((?:normal2-)?)im-(\d+)-\d+(?:-\d+)*$', re.I)
_LABEL_FOLDERS = {name.lower(): idx for idx, name in
                  enumerate(constants.LABEL_NAMES)}


class UnknownNameError(ValueError):
  """A file name that carries no patient we can recognise."""


class ParsedName(NamedTuple):
  patient_id: str
  subtype: str  # one of constants.SUBTYPES


def parse_file_name(file_name: str) -> ParsedName:
  """Patient id and subtype of a Kermany file name (no folders).

  Raises:
    UnknownNameError: the name matches none of the known forms; the caller rejects
      the file rather than guess a patient (a guess could leak a patient
      across splits).
  """
  stem, _ = posixpath.splitext(posixpath.basename(file_name))
  stem = _DOWNLOAD_SUFFIX.sub('', stem.strip())
  match = _PERSON.match(stem)
  if match:
    return ParsedName(f'person{int(match.group(1))}', match.group(2).lower())
  match = _IM.match(stem)
  if match:
    prefix = 'NORMAL2-' if match.group(1) else ''
    return ParsedName(f'{prefix}IM-{match.group(2)}', 'normal')
  raise UnknownNameError(
      f'file name {file_name!r} matches no known patient form '
      '(person<N>_bacteria|virus_<K>, IM-<N>-<K>, NORMAL2-IM-<N>-<K>)')


def parse_dicom_name(file_name: str, label: int,
                     patient_id: str) -> ParsedName:
  """Patient id and subtype of a DICOM file: its PatientID when it has one
  (a scanner's name for the file carries no patient), else the name's.

  The subtype still comes from the name; a file named otherwise is 'normal'
  in a NORMAL folder.

  Raises:
    UnknownNameError: no PatientID and a name of no known form, or a
      PNEUMONIA file whose name does not say bacteria or virus (the subtype
      is a feature of every example).
  """
  try:
    parsed = parse_file_name(file_name)
  except UnknownNameError as e:
    if not patient_id:
      raise UnknownNameError(f'{e}, and the DICOM file has no PatientID'
                             ) from None
    if label == constants.NORMAL:
      return ParsedName(patient_id, 'normal')
    raise UnknownNameError(
        f'DICOM file name {file_name!r} does not say bacteria or virus: a '
        'PNEUMONIA file is named person<N>_bacteria|virus_<K>.dcm (its '
        'patient comes from PatientID)') from None
  return parsed._replace(patient_id=patient_id or parsed.patient_id)


def label_of(parts: Sequence[str]) -> Optional[int]:
  """Label from the nearest ancestor folder named NORMAL or PNEUMONIA.

  Args:
    parts: the path's folder components, outermost first (no file name).

  Returns:
    0 (NORMAL), 1 (PNEUMONIA) or None when no ancestor is a label folder.
  """
  for part in reversed(parts):
    label = _LABEL_FOLDERS.get(part.lower())
    if label is not None:
      return label
  return None


def is_ignored_folder(name: str) -> bool:
  """Folders never read: hidden ones and archive junk such as __MACOSX."""
  return name.startswith('.') or name.startswith('__')


def is_image_name(file_name: str) -> bool:
  """An image or DICOM file's name (JPEG/PNG, .dcm), not hidden."""
  return (file_name.lower().endswith(constants.IMAGE_EXTENSIONS +
                                     constants.DICOM_EXTENSIONS) and
          not file_name.startswith('.'))
