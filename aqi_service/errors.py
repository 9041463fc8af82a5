"""The project's exception tree: every exception class of the package, where it is raised
and how it is answered.

The JSON envelope is ``{"error": {"code", "message", "details"}}`` with the HTTP status;
the HTML error page is ``error.html`` in the page's language (``web/errors.py``). The CLI
(``aqi-service``) prints ``aqi-service: <message>`` on stderr for any ``AqiServiceError``
and exits 1 (2 for a ``ConfigError``).

AqiServiceError                   base of every error raised on purpose
├── InputError (ValueError)       bad input from a user, a station or a file; CLI: message, 1;
│   │                             the admin API: 400 ``invalid``; ``aqi-service aqi``: the
│   │                             line's ``error`` and a warning, the run goes on
│   ├── ConcentrationError        aqi/exact.py: a concentration that is not a finite,
│   │                             non-negative number (``aqi-service aqi``: the line's error)
│   ├── SchemeError               aqi/schemes.py: an unknown index scheme or report, no scheme
│   │                             in force at a time, or a malformed scheme table (at start-up:
│   │                             the CLI message)
│   ├── web.params.BadParameter   web/params.py, web/disclosure_api.py: a query parameter that
│   │                             cannot be accepted; JSON routes: 400 ``bad_parameter``
│   │                             (``details.parameter``); pages: the HTML 400 page naming it
│   ├── disclosure.fields.Invalid       disclosure/fields.py, models.py, service.py: every
│   │                             problem of an object (field, message); admin API: 400
│   │                             ``invalid`` with ``details.problems``; imports: one row error
│   │                             per problem
│   ├── disclosure.credit_code.CreditCodeError   disclosure/credit_code.py: not a valid
│   │                             unified social credit code (GB 32100); a field problem, a 400
│   │                             naming the parameter, or a 404 in an admin path
│   ├── disclosure.service.NotFound     disclosure/service.py: the object named does not
│   │                             exist; admin API: 404 ``not_found``; imports: a row error
│   ├── disclosure.service.Conflict     disclosure/service.py: the change contradicts the
│   │                             stored state; admin API: 409 ``conflict``; imports: a row error
│   ├── disclosure.uploads.UploadError  disclosure/uploads.py: an upload refused (type, name,
│   │   │                         content); admin API: its own status and code (400/413/415)
│   │   └── disclosure.files.TooLarge   disclosure/files.py: larger than the limit; 413
│   │                             ``too_large`` with ``details.limit_bytes``
│   ├── simulator.errors.BadParameter   simulator/: a bad simulator query parameter or fault
│   │                             request; the simulator's 400 with the error's ``code``
│   └── simulator.errors.UnknownStationError   simulator/model.py: no simulated station with
│                                 that code; the simulator's 404 ``unknown_station``
├── ConfigError                   config.py, disclosure/catalog.py, simulator/: an invalid
│                                 configuration or catalogue; CLI: message, exit 2
├── collect.client.StationError   collect/client.py, collector.py: a poll that failed, with
│                                 its ``outcome`` (timeout, http_5xx, …); counted in
│                                 ``aqi_collector_polls_total`` and the station's cursor, the
│                                 run goes on
├── storage.migrations.MigrationError   storage/migrations.py: migration files missing or
│                                 misnamed, or an applied one changed; start-up stops (CLI
│                                 message)
└── storage.db.DatabaseUnavailable      storage/db.py, retry.py: the database cannot be
                                  reached or set up within the start-up budget; CLI message

Outside the tree, on purpose:

* ``web.errors.ApiError`` (an aiohttp ``HTTPException``): the JSON envelope itself, raised
  by JSON handlers with its status and code (a database outage: 503
  ``database_unavailable`` with ``Retry-After``).
* ``web.pages.PageError``: a page's 400 or 404 in Chinese and English, answered with the
  HTML error page by the one page wrapper (``pages.page``).
* ``collect.validate.PayloadError`` (``ValueError``): a station's response that is not the
  expected JSON; the poll's outcome ``bad_payload``.
* ``collect.validate.TooPrecise`` (``ValueError``): one value with more decimal places
  than any instrument reports; caught by validation, the value refused as ``too_precise``.
* ``_Rollback`` (collect/recompute.py, disclosure/importer.py): private, ends a dry run's
  transaction; never leaves its function.

Anything else is a bug: a JSON route answers 500 ``internal_error`` and a page the HTML 500
page (logged with its traceback); the CLI lets the traceback through.
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
