"""One small error hierarchy for the whole tool: plain exceptions.

Library code raises these; only the CLI turns one into a single line on stderr and its
``exit_code``. An error raised in a fetching thread is therefore an ordinary exception there.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a provider failed, an invariant is violated, a bad file...
EXIT_USAGE = 2  # usage or configuration error (click's own code)
EXIT_LOCKED = 75  # another sync holds the lock (sysexits EX_TEMPFAIL: try again later)


class MarketsyncError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def reword(self, message: str) -> None:
        """Change the message (masking a secret, adding what the retries did) everywhere it shows."""
        self.message = message
        self.args = (message,)  # repr() and tracebacks of some tools show args, not str()


class ConfigError(MarketsyncError):
    """Missing or invalid configuration (environment, .env, options)."""

    exit_code = EXIT_USAGE


class InputFileError(MarketsyncError):
    """A file given by the user cannot be used; the message names file and line."""


class DatabaseError(MarketsyncError):
    """The database file is missing, unreadable, corrupt or from a newer marketsync."""


class LockedError(MarketsyncError):
    exit_code = EXIT_LOCKED


class NotFoundLocally(MarketsyncError):
    """Something named on the command line (an order, a mapping, a lot) is not in the database."""


class NotSafe(MarketsyncError):
    """Doing what was asked could invent or lose pieces; the message names what to do instead."""


# --- marketplace errors -------------------------------------------------------------
class ProviderError(MarketsyncError):
    """Anything that went wrong talking to a marketplace. Messages never hold secrets."""

    retryable = False

    def __init__(self, provider: str, message: str):
        self.provider = provider
        super().__init__(f"{provider}: {message}")

    @property
    def detail(self) -> str:
        """The message without the provider's name in front."""
        return self.message.removeprefix(f"{self.provider}: ")


class AuthError(ProviderError):
    pass


class NotFoundError(ProviderError):
    pass


class PermissionDeniedError(ProviderError):
    pass


class RequestRejectedError(ProviderError):
    """The marketplace refused the request as malformed (400, 405, 414, 415, 422 ...)."""


class RateLimitedError(ProviderError):
    retryable = True

    def __init__(self, provider: str, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(provider, message)


class TransientError(ProviderError):
    """5xx, timeouts, connection resets, HTML maintenance pages: worth another try."""

    retryable = True


class BadResponseError(ProviderError):
    """A 2xx answer we cannot understand (wrong shape, malformed JSON)."""

    retryable = True


class DeadlineError(ProviderError):
    """The run's time with the marketplaces is used up (or this marketplace was given up as sick);
    the rest waits for the next run."""


class BudgetExhaustedError(ProviderError):
    """The configured daily call budget is used up; the run stops and resumes next time."""
