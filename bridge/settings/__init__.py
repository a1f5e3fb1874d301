"""Settings: built once at start-up from ``ROLLOUT_*`` variables and an optional file
(``load``), into the frozen dataclasses of ``model``."""
