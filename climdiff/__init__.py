"""climdiff: discriminator-guided image diffusion for time-consistent climate emulation.

The package follows one data flow, data -> train -> checkpoint -> emulate -> evaluate; each
subpackage knows only the stages before it (see docs/architecture.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("climdiff")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
