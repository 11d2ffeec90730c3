"""``python -m pytest_dynamo``: the same as the ``pytest-dynamo`` command."""

import sys

from pytest_dynamo._cli import main

sys.exit(main())
