"""The Pusher: publishes a blessed version atomically, never overwrites, and
puts the model card inside it (component.py, executor.py)."""
