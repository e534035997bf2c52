"""What a notification sends on each channel: templates' placeholders and their rendering
(``rendering.py``), and the channels' limits checked before anything is accepted (``limits.py``).
Pure functions, no I/O: the accept path, the template preview and (later) batch and CSV rows all
validate and render through them, one item at a time."""
