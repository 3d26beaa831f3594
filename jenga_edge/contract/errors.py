"""One small error hierarchy shared by the trainer, the exporter and the agent.

Every message says what was wrong, where (key path, field, file) and what was
expected, so the CLI can print it as one line and exit non-zero.
"""


class JengaError(Exception):
    """Base of every error a user can act on."""

    exit_code = 2


class ConfigError(JengaError):
    """A configuration file or override is malformed."""


class SchemaError(JengaError, ValueError):
    """A feature schema is inconsistent or does not fit the data. (A ValueError too, so
    that msgspec, decoding a bundle's manifest, reports it with the key path.)"""


class DataError(JengaError):
    """A data file cannot be read or does not hold what the config says."""


class BundleError(JengaError):
    """A bundle or model directory is missing, foreign or fails verification."""


class ActionError(JengaError):
    """An action cannot be set up on this machine (its tool is missing, its firewall init failed)."""


class SinkFailure(JengaError):
    """An alert sink or the dead-letter file could not be written, and the agent's
    `on_sink_failure` policy says stop (or its spool failed too)."""


class EventError(JengaError):
    """One event cannot be scored; `field` names the offending field if any."""

    def __init__(self, reason: str, message: str, field: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.row: int | None = None  # set by batch vectorizing: which row of the batch
