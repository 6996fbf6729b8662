"""Event streams: ring buffers and perf event arrays read (``events``), and the producer
side of a user ring buffer (``userring``)."""
