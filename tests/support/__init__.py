"""Plain helpers the tests call: seed data with its ground truth, config builders, raw clients.
Fixtures live in tests/fixtures/ (a pytest plugin); service launchers in obsbundle.services."""
