"""Fitting CORE heads: the trainer, text-encoder tuning, augmentations and degraded copies."""
