import sys

from lookaside.cli import main

sys.exit(main())
