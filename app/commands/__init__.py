"""Command groups of the `oms-auth` CLI, one module each (added in `app.cli`)."""
