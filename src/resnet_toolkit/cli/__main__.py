"""`python -m resnet_toolkit.cli` runs the `resnet-model` command line."""

import sys

from . import main

sys.exit(main())
