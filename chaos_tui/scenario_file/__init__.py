"""Scenario files (issue 14): the user's own system described in YAML, validated with
positions. Textual-free, and imports neither the sandbox nor the agent: model.py (the shape),
loader.py (YAML with positions, `${var}`, every error at once), example.py (`init`'s file),
summary.py (one line per scenario)."""
