"""chaos-tui: a terminal chaos console for platform and SRE teams."""

__version__ = "0.1.0"
