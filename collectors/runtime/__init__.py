"""What collectors and the processes that run them share: the collector contract, background
refresh, collector errors and the one error-code table. Dependencies point here, never back out."""

from collectors.runtime.contract import Collector
from collectors.runtime.errors import CollectorError, error_code, register_error_code
from collectors.runtime.refresh import BackgroundRefresh

__all__ = ["BackgroundRefresh", "Collector", "CollectorError", "error_code", "register_error_code"]
