"""Allow ``python -m aqi_service``."""

from aqi_service.cli import main

raise SystemExit(main())
