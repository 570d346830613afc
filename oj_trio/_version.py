"""Single source of the version string; kept dependency-free so the CLI can import it cheaply."""

__version__ = "0.1.0"
