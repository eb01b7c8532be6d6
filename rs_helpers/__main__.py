import sys

from rs_helpers.cli import main

sys.exit(main())
