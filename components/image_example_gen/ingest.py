"""The Beam graph from an image tree to deduplicated, metadata-only examples.

The tree is listed once, at pipeline construction (`walk`); the expensive
reads and decodes (`inspection`) are spread over all workers; files are then
grouped by sha256 (`dedup`) and kept ones become tf.Examples without their
bytes (`encoding`), which the sink attaches.
"""
from typing import List, NamedTuple

from absl import logging
import apache_beam as beam

from components.image_example_gen import dedup
from components.image_example_gen import encoding
from components.image_example_gen import inspection
from components.image_example_gen import walk


class IngestedImages(NamedTuple):
  examples: beam.PCollection  # tf.train.Example
  duplicates: beam.PCollection  # {'path', 'duplicate_of'}
  rejected: beam.PCollection  # {'path', 'reason'}
  ignored: List[str]


def ingest_images(pipeline: beam.Pipeline, input_base: str) -> IngestedImages:
  """Builds the Beam graph from an image tree to deduplicated tf.Examples."""
  candidates, ignored = walk.list_images(input_base)
  logging.info('Found %d image files under label folders in %s '
               '(%d other entries ignored).', len(candidates), input_base,
               len(ignored))
  results = (
      pipeline
      | 'ListImages' >> beam.Create(candidates)
      # Spread the (expensive) reads and decodes over all workers.
      | 'Spread' >> beam.Reshuffle()
      | 'Inspect' >> beam.Map(inspection.inspect_image)
      | 'KeyBySha256' >> beam.Map(lambda item: (item.sha256, item))
      | 'GroupBySha256' >> beam.GroupByKey()
      | 'Deduplicate' >> beam.FlatMap(dedup.resolve_duplicates).with_outputs(
          dedup.DUPLICATE, dedup.REJECTED, main=dedup.KEPT))
  examples = results[dedup.KEPT] | 'ToExample' >> beam.Map(encoding.to_example)
  return IngestedImages(examples, results[dedup.DUPLICATE],
                        results[dedup.REJECTED], ignored)
