"""Benchmarks of resnet_model against timm, TimmWrapper and Transformers' ResNet: `python -m benchmarks.run`."""
