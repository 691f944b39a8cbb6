"""Model resolution (embedded, local path, hub id) and the backends behind one small interface."""
