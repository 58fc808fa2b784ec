"""The Beam graph from an image tree to deduplicated, metadata-only examples.

The tree is listed once, at pipeline construction (`walk`); the expensive
reads and decodes (`inspection`) are spread over all workers; files are then
grouped by sha256 (`dedup`) and kept ones become tf.Examples without their
bytes (`encoding`), which the sink attaches. An external cohort's files are
joined by sha256 with the main data's too (`read_main_data`), so an image
the model may have trained on never counts in its evaluation.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import apache_beam as beam
import tensorflow as tf

from components.image_example_gen import dedup
from components.image_example_gen import encoding
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import names as constants
from contract import options


class IngestedImages(NamedTuple):
  examples: beam.PCollection  # tf.train.Example
  duplicates: beam.PCollection  # {'path', 'duplicate_of'}
  rejected: beam.PCollection  # {'path', 'reason'}
  ignored: List[str]
  # Of an external cohort only (None otherwise): images the main data holds,
  # {'path', 'sha256', 'main_path'}, and how many image files were listed.
  in_main_data: Optional[beam.PCollection] = None
  num_files: int = 0
  # Links leading outside the data root that were followed, with where they
  # lead ({'path', 'real_path'}; walk.list_tree).
  followed_links: Sequence[Dict[str, str]] = ()


def _sha_and_path(record: bytes) -> Tuple[str, str]:
  feature = tf.train.Example.FromString(record).features.feature
  return (feature[constants.SHA256_KEY].bytes_list.value[0].decode(),
          feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode())


def read_main_data(pipeline: beam.Pipeline,
                   file_patterns: Sequence[str]) -> beam.PCollection:
  """(sha256, source_path) of every example in the main data's TFRecords.

  Read inside Beam, like the images, so it scales with the runner; a split
  whose pattern matches no file (an empty split) contributes nothing.
  """
  return (
      pipeline
      | 'ListMainData' >> beam.Create(list(file_patterns))
      | 'ReadMainData' >> beam.io.ReadAllFromTFRecord()
      | 'MainShaAndPath' >> beam.Map(_sha_and_path))


def ingest_images(pipeline: beam.Pipeline, input_base: str,
                  main_data: Optional[beam.PCollection] = None,
                  absent: bool = False,
                  limits: options.ImageLimits = options.ImageLimits()
                  ) -> IngestedImages:
  """Builds the Beam graph from an image tree to deduplicated tf.Examples.

  Args:
    pipeline: the Beam pipeline.
    input_base: the image tree.
    main_data: for an external cohort, (sha256, source_path) of the main data
      (`read_main_data`); its images are dropped into `in_main_data`.
    absent: an external cohort without a data root: nothing is listed, every
      output is empty (input_base is not looked at).
    limits: what an image file may be (inspection rejects the rest).
  """
  listing = (walk.Listing([], [], []) if absent
             else walk.list_tree(input_base))
  candidates, ignored = listing.candidates, listing.ignored
  logging.info('Found %d image files under label folders in %s '
               '(%d other entries ignored).', len(candidates), input_base,
               len(ignored))
  keyed = (
      pipeline
      | 'ListImages' >> beam.Create(candidates)
      # Spread the (expensive) reads and decodes over all workers.
      | 'Spread' >> beam.Reshuffle()
      | 'Inspect' >> beam.Map(inspection.inspect_image, limits)
      | 'KeyBySha256' >> beam.Map(lambda item: (item.sha256, item)))
  if main_data is None:
    results = (
        keyed
        | 'GroupBySha256' >> beam.GroupByKey()
        | 'Deduplicate' >> beam.FlatMap(
            dedup.resolve_duplicates).with_outputs(
                dedup.DUPLICATE, dedup.REJECTED, main=dedup.KEPT))
  else:
    results = (
        {dedup.COHORT: keyed, dedup.MAIN: main_data}
        | 'JoinMainDataBySha256' >> beam.CoGroupByKey()
        | 'DeduplicateAgainstMain' >> beam.FlatMap(
            dedup.resolve_against_main).with_outputs(
                dedup.DUPLICATE, dedup.REJECTED, dedup.IN_MAIN,
                main=dedup.KEPT))
  examples = results[dedup.KEPT] | 'ToExample' >> beam.Map(encoding.to_example)
  return IngestedImages(
      examples, results[dedup.DUPLICATE], results[dedup.REJECTED], ignored,
      None if main_data is None else results[dedup.IN_MAIN], len(candidates),
      listing.followed_links)
