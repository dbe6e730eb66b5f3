"""The control plane: the one process per data dir that talks to the Docker engine
and writes state. Faces (CLI, TUI, API clients) ask it; see ``control.py``."""
