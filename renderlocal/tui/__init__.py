"""The terminal app (Textual): services, builds, jobs, job logs and spend."""
