"""render-local: a local emulator and terminal app for Render's one-off jobs."""

__version__ = "0.1.0"
