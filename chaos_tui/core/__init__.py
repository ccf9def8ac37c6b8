"""The headless scenario engine. Nothing below this package may import Textual."""
