"""A report job of the native (runtime: python) service."""

import platform
import sys

print(f"report built by python {platform.python_version()} in {sys.path[0] or '.'}", flush=True)
