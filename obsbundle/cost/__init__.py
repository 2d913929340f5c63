"""Per-tenant cost attribution: the model (prices, drivers, budgets) and the usage report."""
