"""Redis collectors: server-wide figures on scrape, per-tenant keyspace from a background SCAN."""
