"""The sandbox's RFC 5849 verifier (sandbox/oauth1.py) agrees with oauthlib, which signs marketsync's
requests, on what they sign -- and refuses what is not an OAuth header."""

from __future__ import annotations

import pytest
from oauthlib.oauth1 import Client

from marketsync.sandbox import oauth1

QUERIES = ["", "direction=in", "status=PAID,SHIPPED&direction=in", "a=1&a=2&b=", "q=two+words&r=%C3%A9t%C3%A9",
           "name=~tilde*star&x=%2F%3F%26"]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("method", ["GET", "PUT", "POST"])
def test_a_request_oauthlib_signed_is_verified(method, query):
    client = Client("consumer key", client_secret="c s&cret", resource_owner_key="tok",
                    resource_owner_secret="t~secret/é")
    url = "http://127.0.0.1:8080/api/store/v1/orders" + (f"?{query}" if query else "")
    _, headers, _ = client.sign(url, http_method=method)
    oauth = oauth1.parse_header(headers["Authorization"])
    base = oauth1.base_string(method, url, query, oauth)
    assert oauth1.hmac_sha1(base, "c s&cret", "t~secret/é") == oauth["oauth_signature"]
    assert oauth1.hmac_sha1(base, "c s&cret", "other") != oauth["oauth_signature"]
    tampered = oauth1.base_string(method, url.replace("orders", "orderz"), query, oauth)
    assert oauth1.hmac_sha1(tampered, "c s&cret", "t~secret/é") != oauth["oauth_signature"]


@pytest.mark.parametrize("header", ["Basic abc", 'OAuth oauth_nonce="1", oauth_nonce="2"', "OAuth oauth_nonce=1",
                                    'OAuth oauth_nonce="1" junk'])
def test_what_is_not_one_oauth_header_is_refused(header):
    with pytest.raises(ValueError):
        oauth1.parse_header(header)


def test_the_encoding_is_rfc_5849s():
    assert oauth1.encode("a b+c/~é") == "a%20b%2Bc%2F~%C3%A9"
    # 3.4.1.2: scheme and host lower case, the default port dropped
    assert oauth1.base_string("get", "HTTP://Example.COM:80/r", "", {}) == "GET&http%3A%2F%2Fexample.com%2Fr&"
