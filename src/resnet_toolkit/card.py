"""The model card written next to every saved model."""

MODEL_CARD = """---
library_name: transformers
pipeline_tag: image-classification
tags:
- timm
- resnet
- custom_code
---

# {title}

{description}

Load it (the modelling code ships with the weights, so pin the commit you reviewed):

```python
from transformers import AutoImageProcessor, AutoModelForImageClassification

model = AutoModelForImageClassification.from_pretrained("REPO_ID", revision="COMMIT_SHA", trust_remote_code=True)
processor = AutoImageProcessor.from_pretrained("REPO_ID", revision="COMMIT_SHA")
```
"""
