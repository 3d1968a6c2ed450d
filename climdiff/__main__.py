"""Allow ``python -m climdiff``."""

from climdiff.cli import main

main()
