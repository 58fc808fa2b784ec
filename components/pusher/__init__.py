"""Pusher executor that publishes a version atomically and never overwrites."""
