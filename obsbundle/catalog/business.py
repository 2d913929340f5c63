"""Business metrics of the platform's services (`collectors.app.business`): agents, tasks, users,
vector search, by tenant. They feed the platform team's business dashboard ("active users, tasks,
agents per tenant"). Like the other app metrics they carry `tenant_id` (capped by
`app.max_tenants_per_instrument`) and no `server` label.
"""

from obsbundle.catalog import PanelHint, declare

SOURCE = "business"
# Outcomes a finished task is counted under; anything else is `_other` (a caller cannot add series).
OUTCOMES = ("success", "failure", "canceled", "timeout")
VECTOR_SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
RESULT_COUNT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

AGENTS_ACTIVE = declare(
    "agents_active", "gauge",
    "Agents currently running, by tenant (read from the service's own registry at each collection).",
    ("tenant_id",), source=SOURCE, panel=PanelHint(title="Agents active by tenant"),
)
TASKS_STARTED = declare(
    "agent_tasks_started_total", "counter",
    "Agent tasks started, by tenant.",
    ("tenant_id",), source=SOURCE, panel=PanelHint(title="Tasks started per second by tenant"),
)
TASKS_FINISHED = declare(
    "agent_tasks_finished_total", "counter",
    "Agent tasks finished, by tenant and outcome (success, failure, canceled, timeout, _other).",
    ("tenant_id", "outcome"), source=SOURCE, panel=PanelHint(title="Tasks finished per second by tenant"),
)
ACTIVE_USERS = declare(
    "active_users", "gauge",
    "Distinct users seen in the last `window`, by tenant: a HyperLogLog estimate (relative standard "
    "error 1.04/sqrt(2^precision), 1.6% at the default precision 12).",
    ("tenant_id", "window"), source=SOURCE, panel=PanelHint(title="Active users by tenant"),
)
VECTOR_SEARCH_DURATION = declare(
    "vector_search_duration_seconds", "histogram",
    "Wall time of one vector-store similarity search, by tenant and index.",
    ("tenant_id", "index"), source=SOURCE, unit="seconds", buckets=VECTOR_SEARCH_BUCKETS,
    panel=PanelHint(title="Vector search p95 by tenant"),
)
VECTOR_SEARCH_RESULTS = declare(
    "vector_search_results", "histogram",
    "Results one vector-store search returned, by tenant and index (0: nothing relevant found).",
    ("tenant_id", "index"), source=SOURCE, buckets=RESULT_COUNT_BUCKETS,
)
