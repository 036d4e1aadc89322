"""Training the nnU-Net way: folds, deep supervision, augmentation, resume, fine-tuning."""
