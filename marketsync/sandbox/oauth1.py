"""OAuth 1.0a HMAC-SHA1 signatures as the sandbox's BrickLink checks them, written from RFC 5849
(section numbers below) rather than with oauthlib, the library that signs marketsync's requests:
a verifier of the same code would agree with any mistake of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

_PAIR = re.compile(r'\s*([A-Za-z0-9_.~-]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


def encode(text: str) -> str:
    """3.6: UTF-8, then every byte but the unreserved ALPHA DIGIT - . _ ~ as %XX (upper case)."""
    return quote(text.encode("utf-8"), safe="~")


def parse_header(header: str) -> dict[str, str]:
    """3.5.1: ``OAuth name="value", ...``; names and values percent-decoded. ValueError when it is
    not that, or names a parameter twice."""
    if not header.startswith("OAuth "):
        raise ValueError("not an OAuth header")
    rest, params = header[len("OAuth "):].strip(), {}
    while rest:
        match = _PAIR.match(rest)
        if not match:
            raise ValueError("malformed OAuth header")
        name, value = unquote(match[1]), unquote(match[2])
        if name in params:
            raise ValueError(f"{name} given twice")
        params[name] = value
        rest = rest[match.end():].strip()
    return params


def base_string(method: str, url: str, raw_query: str, oauth: dict[str, str]) -> str:
    """3.4.1: METHOD & base string URI & normalized parameters (the query's, form-decoded, and the
    header's but ``realm`` and ``oauth_signature``)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    uri = f"{scheme}://{netloc}{parts.path or '/'}"  # 3.4.1.2: no query, no fragment
    pairs = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=False)  # 3.4.1.3.1
    pairs += [(name, value) for name, value in oauth.items() if name not in ("realm", "oauth_signature")]
    normalized = "&".join(f"{name}={value}" for name, value in sorted((encode(n), encode(v)) for n, v in pairs))
    return "&".join((encode(method.upper()), encode(uri), encode(normalized)))  # 3.4.1.3.2


def hmac_sha1(base: str, consumer_secret: str, token_secret: str) -> str:
    """3.4.2: the key is both secrets encoded and joined by ``&``; the digest base64-encoded."""
    key = f"{encode(consumer_secret)}&{encode(token_secret)}".encode("utf-8")
    return base64.b64encode(hmac.new(key, base.encode("utf-8"), hashlib.sha1).digest()).decode("ascii")
