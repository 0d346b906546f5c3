"""Optional tools: the ``worqr`` CLI, the demo, drawing snapshots, a throwaway server."""
