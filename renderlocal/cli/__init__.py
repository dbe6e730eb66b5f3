"""The scriptable face: ``render-local`` commands over the control plane."""
