"""Sliding-window prediction, export, ensembling, postprocessing and evaluation."""
