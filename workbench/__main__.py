"""``python -m workbench ...``: the ``workbench`` command, also for launchers that take a module
(``torchrun -m workbench train RECIPE``, ``accelerate launch -m workbench train RECIPE``)."""

import sys

from workbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
