import sys

from autochip.cli import main

sys.exit(main())
