"""`python -m bot` is `bananabot`."""

from bot.cli import main

raise SystemExit(main())
