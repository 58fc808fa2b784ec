"""The operating threshold: missing a pneumonia is worse than a false alarm.

The rule (the HIGHEST threshold whose sensitivity on the eval split reaches
the target) lives on the ground floor, contract/operating_point.py, so that
the SiteCalibration component, which may choose it on an external cohort
instead, uses the same rule without importing the trainer. Its names stay
importable from here.
"""
# pylint: disable=unused-import,g-importing-member
from contract.operating_point import OperatingPoint
from contract.operating_point import SERVING_TOLERANCE
from contract.operating_point import choose_threshold
# pylint: enable=unused-import,g-importing-member

__all__ = ['OperatingPoint', 'SERVING_TOLERANCE', 'choose_threshold']
