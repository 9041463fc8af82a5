"""The project's exception tree.

AqiServiceError
├── InputError                 bad input from a user, a station or a file (400 / a CLI message)
│   ├── ConcentrationError     a concentration that is not a finite, non-negative number
│   └── SchemeError            an unknown index scheme or report, or no scheme for a time
└── ConfigError                an invalid configuration
"""


class AqiServiceError(Exception):
    """Base of every error the project raises on purpose."""


class InputError(AqiServiceError, ValueError):
    """Input that cannot be accepted; the message says why."""


class ConcentrationError(InputError):
    """A concentration that is not a finite, non-negative number."""


class SchemeError(InputError):
    """An unknown index scheme or report, or no scheme in force at a time."""


class ConfigError(AqiServiceError):
    """An invalid configuration."""
