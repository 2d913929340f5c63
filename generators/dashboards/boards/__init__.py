"""One module per dashboard; each exposes `board(config) -> Board`. Order = file order."""

from generators.dashboards.boards import (
    application,
    cost,
    infrastructure,
    postgresql,
    redis,
    slo,
    temporal,
    tenant,
    tenants,
)

MODULES = (infrastructure, application, tenants, postgresql, redis, temporal, tenant, slo, cost)
