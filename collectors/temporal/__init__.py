"""Temporal: per-tenant workflow counts and task-queue backlog from the frontend API, and the
server's own metrics re-exposed with tenant_id (relabel mode)."""
