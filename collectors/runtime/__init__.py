"""What collectors and the processes that run them share: the collector contract, background
refresh, the exposition cache that serves background passes rendered once, collector errors and
the one error-code table. Dependencies point here, never back out."""

from collectors.runtime.contract import Collector
from collectors.runtime.errors import CollectorError, error_code, register_error_code
from collectors.runtime.exposition import Exposition, ExpositionCache
from collectors.runtime.refresh import BackgroundRefresh

__all__ = ["BackgroundRefresh", "Collector", "CollectorError", "Exposition", "ExpositionCache", "error_code",
           "register_error_code"]
