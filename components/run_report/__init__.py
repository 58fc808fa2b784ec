"""RunReport: one HTML page (with PNG figures) per pipeline run."""
