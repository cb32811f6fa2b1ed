"""The REST API over TLS, as `meltica up` serves it with MELTICA_API_TLS_CERT / MELTICA_API_TLS_KEY:
a client that trusts the certificate's CA gets answers; one that does not is refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
import trustme

from tests.e2e.up_process import free_port, meltica_up


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_api(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`meltica up` on a free port with a certificate for 127.0.0.1 issued by `ca`."""
    tmp = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    port = free_port()
    settings = {"MELTICA_API_TLS_CERT": str(tmp / "cert.pem"), "MELTICA_API_TLS_KEY": str(tmp / "key.pem")}
    with meltica_up(tmp / "data", port, **settings) as said:
        url = f"https://127.0.0.1:{port}"
        assert url in said[-1], said[-1]
        yield url


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_a_client_that_trusts_the_ca_is_answered_over_tls(https_api: str, ca: trustme.CA) -> None:
    with httpx.Client(verify=_trusting(ca), timeout=30) as client:
        health = client.get(f"{https_api}/healthz")
        anonymous = client.get(f"{https_api}/v1/balances")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert anonymous.status_code == 401  # TLS carries the API's own checks unchanged
    assert anonymous.headers["content-type"].startswith("application/problem+json")


def test_a_client_that_does_not_trust_the_ca_is_refused(https_api: str, ca: trustme.CA) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https_api}/healthz", verify=ssl.create_default_context(), timeout=30)
    stranger = trustme.CA()  # a certificate from another CA does not vouch for this server
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https_api}/healthz", verify=_trusting(stranger), timeout=30)


def test_plain_http_gets_no_answer_from_the_tls_port(https_api: str) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(https_api.replace("https://", "http://") + "/healthz", timeout=30)
