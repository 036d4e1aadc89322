"""Dynamic U-Nets built from architecture specs, fusion for fast inference, nnU-Net weight import."""
