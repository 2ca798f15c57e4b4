"""trackdechets-connector: business-system records to Trackdéchets BSDs, exactly once."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trackdechets-connector")
    """The one version number: ``project.version`` in pyproject.toml, read from the installed metadata."""
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"
