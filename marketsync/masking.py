"""Hiding credentials in any text that may reach a person: output, logs, errors."""

from __future__ import annotations

import re
from typing import Iterable

# Case-sensitive: the APIs' parameter names are lowercase, and "KEY=VALUE" in a usage message is no secret.
_KEY_IN_URL = re.compile(r"((?:^|[?&;\s])(?:key|api_key|oauth_signature|oauth_token)=)[^&\s\"']+")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide credentials in any text: known secret values and ``key=`` URL parameters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_IN_URL.sub(r"\1***", text)
