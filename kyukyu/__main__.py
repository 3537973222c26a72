import sys

from kyukyu.cli import main

sys.exit(main())
