"""Dataset fingerprint, plans, preprocessing and resampling."""
