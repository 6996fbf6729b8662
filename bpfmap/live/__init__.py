"""Views of a live system, refreshed: a map's entries and their rates (``watch``), the
host's maps (``top``), profilers' stacks joined with their stack maps (``stacks``)."""
