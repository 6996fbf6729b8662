"""Jobs on many entries at once: bulk loads (``bulk``), lossless drains (``drain``),
counts and filtered deletes (``changes``), copies and migrations (``migrate``), maps saved
to a file, restored and compared (``save``, ``restore``, ``diff``)."""
