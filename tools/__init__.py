"""Result tools: read run directories, aggregate across seeds and draw figures (`python -m tools.plot`)."""
