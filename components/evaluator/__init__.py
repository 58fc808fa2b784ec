"""Evaluator that measures at the candidate model's own operating threshold."""
