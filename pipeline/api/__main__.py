import sys

from pipeline.api.server import main

sys.exit(main())
