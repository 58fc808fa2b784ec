"""PneumoniaTrainer: TFX's generic Trainer with per-run training options."""
