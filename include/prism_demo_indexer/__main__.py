import sys

from prism_demo_indexer.cli import main

sys.exit(main())
