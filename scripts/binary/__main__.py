"""``python -m binary`` (with ``scripts`` on the path, as ``make binary`` runs it): build dist/asrctl."""

import sys

from binary.build import main

sys.exit(main())
