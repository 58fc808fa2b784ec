"""SiteCalibration: the operating threshold chosen on an external cohort's
calibration half (or the Trainer's, passed on)."""
