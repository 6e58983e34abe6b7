"""``python -m cam_widgets.metrics`` (and ``torchrun ... -m cam_widgets.metrics``): the evaluation
over an image folder, as ``cam-widgets evaluate``. (A module of its own: running
``-m cam_widgets.metrics.distributed``, which the package imports, made Python warn.)"""

import sys

from .distributed import main

sys.exit(main())
