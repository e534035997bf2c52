"""``python -m stack up [--no-senders]``: see :mod:`stack.runner`."""

from stack.runner import main

raise SystemExit(main())
