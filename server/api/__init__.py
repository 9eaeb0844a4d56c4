"""HTTP API: one controller module per resource, plus the conventions every endpoint shares."""
