"""Training data: case stores, patch sampling with foreground oversampling, batch loading, splits."""
