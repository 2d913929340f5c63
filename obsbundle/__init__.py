"""obsbundle: tenant-aware exporters, collectors, and generated dashboards and alerts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("obsbundle")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
