"""Our Authlib request keeps every attribute Authlib's own constructor sets."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Request

from app.tokens.oauth.requests import FormRequest


def test_form_request_has_authlib_attributes() -> None:
    reference = OAuth2Request("POST", "https://example.com/token", headers={})
    ours = FormRequest(
        method="POST",
        uri="http://testserver/oauth/token",
        headers={},
        form={"grant_type": "password", "scope": "a:b"},
        client_ip="127.0.0.1",
        fingerprint=None,
    )
    assert set(vars(reference)) <= set(vars(ours))
    assert ours.payload.grant_type == "password" and ours.scope == "a:b"
    assert ours.payload.datalist["scope"] == ["a:b"] and ours.form["scope"] == "a:b"
