"""Patterned load: patterns.py says when to send (pure data and arithmetic), driver.py sends
(open loop, an in-flight cap, a record per send, stats per phase) through any async submit."""
