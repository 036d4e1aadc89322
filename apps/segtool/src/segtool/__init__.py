"""Segment medical images with pretrained models, by task, in one command."""
