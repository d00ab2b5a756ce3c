import sys

from misp_eks.validate.cli import main

sys.exit(main())
