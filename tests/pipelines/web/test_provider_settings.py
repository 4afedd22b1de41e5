"""How `planning serve` is told of the identity provider (``pipelines.web.oidc``), and each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.web.oidc import DEFAULT_NAME, ProviderMisconfigured, identity_provider

ISSUER = "https://login.example.gov.uk/tenant"


def secret_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "oidc-secret"
    path.write_text("s3cret from the provider\n")
    path.chmod(mode)
    return path


def test_no_issuer_means_passwords_only() -> None:
    assert identity_provider({}) is None
    assert identity_provider({"PLANNING_OIDC_CLIENT_ID": "x"}) is None


def test_the_secret_comes_from_a_0600_file_and_is_never_shown(tmp_path: Path) -> None:
    provider = identity_provider({"PLANNING_OIDC_ISSUER": ISSUER, "PLANNING_OIDC_CLIENT_ID": "planning",
                                  "PLANNING_OIDC_CLIENT_SECRET_FILE": str(secret_file(tmp_path))})
    assert provider is not None
    assert (provider.issuer, provider.client_id, provider.client_secret) == (ISSUER, "planning", "s3cret from the provider")
    assert provider.name == DEFAULT_NAME and provider.redirect_uri is None
    assert provider.discovery_url == ISSUER + "/.well-known/openid-configuration"
    assert "s3cret" not in repr(provider)


@pytest.mark.parametrize(("environ", "named"), [
    ({"PLANNING_OIDC_ISSUER": "http://login.example.gov.uk"}, "PLANNING_OIDC_ISSUER"),
    ({"PLANNING_OIDC_ISSUER": "login.example.gov.uk"}, "PLANNING_OIDC_ISSUER"),
    ({"PLANNING_OIDC_ISSUER": ISSUER}, "PLANNING_OIDC_CLIENT_ID"),
    ({"PLANNING_OIDC_ISSUER": ISSUER, "PLANNING_OIDC_CLIENT_ID": "planning"}, "PLANNING_OIDC_CLIENT_SECRET_FILE"),
    ({"PLANNING_OIDC_ISSUER": ISSUER, "PLANNING_OIDC_CLIENT_ID": "planning", "PLANNING_OIDC_CLIENT_SECRET": "s",
      "PLANNING_OIDC_REDIRECT_URI": "http://planning.example.gov.uk/sign-in/oidc/callback"}, "PLANNING_OIDC_REDIRECT_URI"),
    ({"PLANNING_OIDC_ISSUER": ISSUER, "PLANNING_OIDC_CLIENT_ID": "planning", "PLANNING_OIDC_CLIENT_SECRET": "s",
      "PLANNING_OIDC_CA_FILE": "/no/such/ca.pem"}, "PLANNING_OIDC_CA_FILE"),
], ids=["http issuer", "no scheme", "no client id", "no secret", "http redirect", "missing CA file"])
def test_a_provider_that_cannot_be_used_is_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ProviderMisconfigured, match=f"\\${named}"):
        identity_provider(environ)


def test_a_secret_file_others_may_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = secret_file(tmp_path, 0o644)
    with pytest.raises(ProviderMisconfigured, match=f"chmod 600 {path}"):
        identity_provider({"PLANNING_OIDC_ISSUER": ISSUER, "PLANNING_OIDC_CLIENT_ID": "planning",
                           "PLANNING_OIDC_CLIENT_SECRET_FILE": str(path)})


def test_plain_http_is_for_a_provider_on_loopback_only() -> None:
    provider = identity_provider({"PLANNING_OIDC_ISSUER": "http://127.0.0.1:8081", "PLANNING_OIDC_CLIENT_ID": "planning",
                                  "PLANNING_OIDC_CLIENT_SECRET": "s", "PLANNING_OIDC_NAME": "Test provider"})
    assert provider is not None and provider.name == "Test provider"
