"""Jobs on many entries at once: saving maps to a file, restoring them, comparing two."""
