"""Configuration: the environment, a ``.env`` file in the working directory, and defaults.

The real environment always wins over ``.env``. Credentials are read from the environment
only (never from command-line flags, which other users can see in ``ps``).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Mapping

from marketsync.errors import ConfigError
from marketsync.registry import MARKETPLACES, Capability

DEFAULT_DB = "marketsync.db"
DEFAULT_ACCOUNT = "default"
DEFAULT_HTTP_TIMEOUT = 20.0
DEFAULT_HTTP_DEADLINE = 60.0  # a whole request, however slowly it arrives
DEFAULT_RUN_DEADLINE = 600.0  # a run's time with the marketplaces, shared between them: well under 15 minutes
DEFAULT_BRICKLINK_DAILY_BUDGET = 5000
DEFAULT_BRICKOWL_RATE_LIMIT = 600  # requests per minute
DEFAULT_BRICKOWL_BATCH_RATE_LIMIT = 100  # bulk/batch calls per minute (documented as 100-200: the low end)

CREDENTIAL_VARS = {name: m.credentials for name, m in MARKETPLACES.items()}


def load_dotenv_file(path: Path | None = None) -> list[str]:
    """Load ``.env`` from the working directory; a line that cannot be parsed is an error.
    Returns warnings (a file others may read: it holds the marketplace keys)."""
    from dotenv import load_dotenv
    from dotenv.parser import parse_stream

    path = path or Path.cwd() / ".env"
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    import io

    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key and binding.value is None):  # `NAME` alone: no '=' (never set quietly)
            raise ConfigError(f"{path} line {binding.original.line}: not a NAME=value line")  # "KEY=..." would be masked as a secret
    load_dotenv(path, override=False)
    try:
        readable = path.stat().st_mode & 0o077
    except OSError:
        readable = 0
    if readable:
        return [f"warning: {path} can be read by other users and holds your marketplace keys; run: chmod 600 {path}"]
    return []


def credentials(provider: str, environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The provider's credentials, or None when none of its variables is set.

    Some but not all set is a configuration error naming the missing variables.
    """
    environ = os.environ if environ is None else environ
    names = CREDENTIAL_VARS[provider]
    values = {name: (environ.get(name) or "").strip() for name in names}
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(names):
        return None
    if missing:
        raise ConfigError(f"{provider}: missing {', '.join(missing)}")
    return values


def require_credentials(provider: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    creds = credentials(provider, environ)
    if creds is None:
        raise ConfigError(f"{provider}: no credentials; set {', '.join(CREDENTIAL_VARS[provider])}")
    return creds


def configured_providers(environ: Mapping[str, str] | None = None) -> list[str]:
    return [p for p in CREDENTIAL_VARS if credentials(p, environ) is not None]


def api_url(provider: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    declared = MARKETPLACES[provider]
    url = (environ.get(declared.url_var) or declared.default_url).strip().rstrip("/")
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname  # 'http://[::1' raises: no traceback later
    except ValueError:
        host = None
    if not url.startswith(("http://", "https://")) or not host:
        raise ConfigError(f"{declared.url_var}: {url!r} is not an http(s) URL")
    return url


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every credential value currently configured, for masking in output."""
    environ = os.environ if environ is None else environ
    return [
        environ[name]
        for names in CREDENTIAL_VARS.values()
        for name in names
        if environ.get(name) and len(environ[name]) >= 4
    ]


class HttpSettings:
    """How marketsync talks to the marketplaces (all from options / environment variables)."""

    def __init__(
        self,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        retry_after_cap: float = 60.0,
        concurrency: int = 4,
        bricklink_daily_budget: int | None = DEFAULT_BRICKLINK_DAILY_BUDGET,
        brickowl_rate_limit: float | None = DEFAULT_BRICKOWL_RATE_LIMIT,
        brickowl_batch_rate_limit: float | None = DEFAULT_BRICKOWL_BATCH_RATE_LIMIT,
        request_deadline: float | None = DEFAULT_HTTP_DEADLINE,
        run_deadline: float | None = DEFAULT_RUN_DEADLINE,
    ):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.retry_after_cap = retry_after_cap
        self.concurrency = concurrency
        self.bricklink_daily_budget = bricklink_daily_budget
        self.brickowl_rate_limit = brickowl_rate_limit
        self.brickowl_batch_rate_limit = brickowl_batch_rate_limit
        self.request_deadline = request_deadline
        self.run_deadline = run_deadline


# --- whether a marketplace restocks cancelled orders (docs/stock-model.md) ----------------------------
YES_NO = {"yes": True, "no": False}


def cancel_restocks(environ: Mapping[str, str] | None = None) -> dict[str, bool]:
    """The seller's settings: marketplace -> whether it puts a cancelled order's pieces back on the
    listing (``MARKETSYNC_<MARKETPLACE>_CANCEL_RESTOCKS`` = yes | no); a marketplace not set is
    absent (marketsync learns it)."""
    environ = os.environ if environ is None else environ
    settings = {}
    for name, declared in MARKETPLACES.items():
        value = (environ.get(declared.cancel_restocks_var) or "").strip().lower()
        if not value or not declared.can(Capability.LISTINGS):
            continue
        if value not in YES_NO:
            raise ConfigError(f"{declared.cancel_restocks_var}: {value!r} is neither yes nor no")
        settings[name] = YES_NO[value]
    return settings


# --- mirroring (``stock mirror``): the prices and conditions the seller states -------------------------
MIRROR_USED_GRADES = ("usedn", "usedg", "useda")  # BrickOwl's used grades a BrickLink used lot may be given


class MirrorSettings:
    """What mirroring may not guess: each marketplace's currency (``MARKETSYNC_CURRENCY_<MARKETPLACE>``;
    else the currency of its orders), the exchange rates (``MARKETSYNC_PRICE_RATE_<FROM>_<TO>``: one
    FROM is worth that many TO), a price factor per marketplace lots are created on
    (``MARKETSYNC_PRICE_FACTOR_<MARKETPLACE>``, 1 by default) and the used grade a BrickLink used
    lot gets on BrickOwl (``MARKETSYNC_MIRROR_USED_GRADE``: usedn, usedg or useda; none by default)."""

    def __init__(self, currencies: dict[str, str] | None = None, rates: dict[tuple[str, str], Decimal] | None = None,
                 factors: dict[str, Decimal] | None = None, used_grade: str | None = None):
        self.currencies = dict(currencies or {})
        self.rates = dict(rates or {})
        self.factors = dict(factors or {})
        self.used_grade = used_grade


def _positive(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except ArithmeticError:
        number = Decimal(0)
    if not number.is_finite() or number <= 0:
        raise ConfigError(f"{name}: {value!r} is not a positive number")
    return number


def mirror_settings(environ: Mapping[str, str] | None = None) -> MirrorSettings:
    environ = os.environ if environ is None else environ
    settings = MirrorSettings()
    for name in MARKETPLACES:
        currency = (environ.get(f"MARKETSYNC_CURRENCY_{name.upper()}") or "").strip().upper()
        if currency:
            settings.currencies[name] = currency
        factor = (environ.get(f"MARKETSYNC_PRICE_FACTOR_{name.upper()}") or "").strip()
        if factor:
            settings.factors[name] = _positive(f"MARKETSYNC_PRICE_FACTOR_{name.upper()}", factor)
    prefix = "MARKETSYNC_PRICE_RATE_"
    for var, value in environ.items():
        if var.startswith(prefix) and value.strip():
            pair = var[len(prefix):].upper().split("_")
            if len(pair) != 2 or not all(len(code) == 3 and code.isalpha() for code in pair):
                raise ConfigError(f"{var}: name it {prefix}<FROM>_<TO> with currency codes, e.g. {prefix}EUR_USD")
            settings.rates[(pair[0], pair[1])] = _positive(var, value)
    grade = (environ.get("MARKETSYNC_MIRROR_USED_GRADE") or "").strip().lower()
    if grade and grade not in MIRROR_USED_GRADES:
        raise ConfigError(f"MARKETSYNC_MIRROR_USED_GRADE: {grade!r} is not one of {', '.join(MIRROR_USED_GRADES)}")
    settings.used_grade = grade or None
    return settings
