"""The REST face: Render's API (``/v1``) on localhost, over the control plane."""
