"""Map raw request paths to bounded route templates and their path parameters.

A raw path as a label would be unbounded cardinality (ids in paths), so only configured
templates become `route` values; anything else is `_other`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

OTHER = "_other"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RouteTable:
    """Templates like `/v1/tenants/{tenant}/infer`, matched in order; `{x}` matches one segment."""

    def __init__(self, templates: Iterable[str] = ()) -> None:
        self._routes: list[tuple[str, re.Pattern[str]]] = []
        for template in templates:
            pattern, last = "", 0
            for match in _PARAM.finditer(template):
                pattern += re.escape(template[last : match.start()]) + f"(?P<{match.group(1)}>[^/]+)"
                last = match.end()
            pattern += re.escape(template[last:])
            self._routes.append((template, re.compile(pattern + "/?")))

    def match(self, path: str) -> tuple[str, dict[str, str]]:
        """(route template, path params) for a request path; (`_other`, {}) if none matches."""
        for template, regex in self._routes:
            found = regex.fullmatch(path)
            if found:
                return template, found.groupdict()
        return OTHER, {}
