"""Names shared by ingestion, schema, trainer, serving and evaluation.

Other tools depend on the serving names; change them only with a new contract.
"""

# --- tf.Example feature keys written by ingestion -----------------------------
IMAGE_KEY = 'image_raw'  # the file's bytes, JPEG or PNG; of a DICOM, its PNG
LABEL_KEY = 'label'  # int64: 0 NORMAL, 1 PNEUMONIA
PATIENT_ID_KEY = 'patient_id'  # bytes: DICOM PatientID, else from the name
SUBTYPE_KEY = 'subtype'  # bytes: normal, bacteria or virus
SOURCE_PATH_KEY = 'source_path'  # bytes, path relative to the data root
SHA256_KEY = 'sha256'  # bytes, hex digest of image_raw (the file's bytes)
HEIGHT_KEY = 'height'  # int64, pixels of the original
WIDTH_KEY = 'width'  # int64
CHANNELS_KEY = 'channels'  # int64, channels of the original (1 or 3)
# Watched for drift (components/drift_check), never read by the model:
FILE_FORMAT_KEY = 'file_format'  # bytes: one of FILE_FORMATS, of the source
MEAN_INTENSITY_KEY = 'mean_intensity'  # float: mean decoded pixel, 0-255
FILE_FORMATS = ('jpeg', 'png', 'gif', 'bmp', 'dicom')  # as TF decodes

# --- labels -------------------------------------------------------------------
LABEL_NAMES = ('NORMAL', 'PNEUMONIA')  # index == label value
NORMAL, PNEUMONIA = 0, 1
SUBTYPES = ('normal', 'bacteria', 'virus')

# --- ingestion ----------------------------------------------------------------
IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png')
# Read as DICOM (components/image_example_gen/dicom.py), stored as PNG.
DICOM_EXTENSIONS = ('.dcm',)
# Output splits and their share (hash buckets out of 10), split by patient.
SPLITS = (('train', 7), ('eval', 2), ('test', 1))
SPLIT_NAMES = tuple(name for name, _ in SPLITS)
TRAIN_SPLIT, EVAL_SPLIT, TEST_SPLIT = SPLIT_NAMES
# An external cohort (another site or period) is never split: all of it is
# one split of its own Examples artifact, evaluated, never trained on.
EXTERNAL_SPLIT = 'external'
# With `--threshold-from external` the cohort is split in two halves by
# patient: the threshold is chosen on CALIBRATION_SPLIT and every external
# metric is measured on EXTERNAL_SPLIT (the other half) only.
CALIBRATION_SPLIT = 'calibration'
# Where the operating threshold is chosen (contract.options threshold_from).
THRESHOLD_FROM_EVAL, THRESHOLD_FROM_EXTERNAL = 'eval', 'external'
THRESHOLD_SOURCES = (THRESHOLD_FROM_EVAL, THRESHOLD_FROM_EXTERNAL)

# --- exported model contract --------------------------------------------------
SERVING_SIGNATURE = 'serving_default'
SERVING_INPUT = 'image_bytes'
EXAMPLES_SIGNATURE = 'serving_examples'
EXAMPLES_INPUT = 'examples'
PROBABILITY_OUTPUT = 'pneumonia_probability'
LABEL_OUTPUT = 'label'
# Grad-CAM (trainer/gradcam.py): `image_bytes` -> HEAT_MAP_OUTPUT (float32
# [None, S, S] in [0, 1]) and the two outputs above.
EXPLAIN_SIGNATURE = 'explain'
EXPLAIN_INPUT = SERVING_INPUT
HEAT_MAP_OUTPUT = 'heat_map'
# How the serving graph's refusal of an oversize image begins (an
# INVALID_ARGUMENT answer); clients such as predict.py may match on it.
IMAGE_REFUSED = 'image refused'
