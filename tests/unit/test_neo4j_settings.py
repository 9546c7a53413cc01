"""Neo4j settings are checked where they are made (library, API and CLI alike), and a
failed connection is explained by its cause. No database: what is checked here is decided
before, or after, talking to one."""

from __future__ import annotations

import socket
import ssl

import pytest
from neo4j.exceptions import AuthError, ServiceUnavailable

from api import create_app
from hopper_graph.errors import ValidationError
from hopper_graph.graph import SCHEMES, Neo4jSettings, unreachable_cause

ACCEPTED = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def test_the_accepted_schemes_are_the_bolt_ones():
    assert set(SCHEMES) == set(ACCEPTED)
    for scheme in ACCEPTED:
        assert Neo4jSettings(f"{scheme}://db.example:7687").uri.startswith(scheme)
    assert Neo4jSettings("BOLT://127.0.0.1:7687")  # schemes are case-insensitive


@pytest.mark.parametrize("uri", ["http://127.0.0.1:7474", "https://x.databases.neo4j.io",
                                 "ftp://host", "bolt+x://host", "neo4j+https://host"])
def test_a_wrong_scheme_is_refused_by_name_listing_the_accepted_ones(uri):
    with pytest.raises(ValidationError) as caught:
        Neo4jSettings(uri)
    message = caught.value.message
    assert f"{uri.split('://')[0]}://" in message and "not supported" in message
    assert all(scheme in message for scheme in ACCEPTED)
    assert "uri" in caught.value.errors


@pytest.mark.parametrize("uri", ["localhost:7687", "127.0.0.1", "", "//host:7687"])
def test_a_uri_without_scheme_is_refused(uri):
    with pytest.raises(ValidationError, match="no scheme"):
        Neo4jSettings(uri)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_the_timeout_must_be_a_positive_number(timeout):
    with pytest.raises(ValidationError, match="positive number of seconds"):
        Neo4jSettings("bolt://127.0.0.1:7687", timeout=timeout)


def test_settings_from_the_environment_are_checked(monkeypatch):
    monkeypatch.setenv("HOPPER_NEO4J_URI", "bolt://127.0.0.1:7687")
    monkeypatch.setenv("HOPPER_NEO4J_TIMEOUT", "ten")
    with pytest.raises(ValidationError, match="HOPPER_NEO4J_TIMEOUT must be a number"):
        Neo4jSettings.from_env()
    monkeypatch.setenv("HOPPER_NEO4J_TIMEOUT", "2.5")
    monkeypatch.setenv("HOPPER_NEO4J_URI", "http://127.0.0.1:7474")
    with pytest.raises(ValidationError, match="http:// is not supported"):
        Neo4jSettings.from_env()


def test_the_api_refuses_a_wrong_scheme_at_start(monkeypatch):
    monkeypatch.delenv("HOPPER_NEO4J_URI", raising=False)
    with pytest.raises(ValidationError, match="http:// is not supported"):
        create_app({"HOPPER_NEO4J_URI": "http://127.0.0.1:7474"})


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised from ``inner``, as the driver chains its errors."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(("error", "kind", "phrase"), [
    (chained(ServiceUnavailable("Couldn't connect"), ConnectionRefusedError(111, "refused")),
     "connection-refused", "connection refused"),
    (chained(ServiceUnavailable("Failed to DNS resolve"),
             socket.gaierror(-2, "Name or service not known")),
     "name-not-resolved", "name not resolved (Name or service not known)"),
    (chained(ServiceUnavailable("Unable to retrieve routing information"),
             ExceptionGroup("all failed", [ConnectionRefusedError(111, "refused")])),
     "connection-refused", "connection refused"),
    (chained(ServiceUnavailable("Couldn't connect"), ssl.SSLEOFError(8, "EOF")),
     "tls", "TLS handshake failed"),
    (chained(ServiceUnavailable("Couldn't connect"),
             ssl.SSLCertVerificationError(1, "certificate verify failed")),
     "tls", "TLS handshake failed"),
    (chained(ServiceUnavailable("Couldn't connect"), TimeoutError("timed out")),
     "timed-out", "no answer in time"),
    (AuthError("The client is unauthorized due to authentication failure."),
     "auth-failed", "authentication failed"),
    (ServiceUnavailable("Cannot to connect to Bolt service on x (looks like HTTP)"),
     "not-bolt", "answers HTTP, not Bolt"),
    (chained(ServiceUnavailable("lost"), ConnectionResetError(104, "Connection reset by peer")),
     "os-error", "connection reset by peer"),
    (ServiceUnavailable("secret host 10.0.0.7"), "unavailable", "ServiceUnavailable"),
])
def test_the_cause_of_a_failed_connection_is_named(error, kind, phrase):
    found_kind, text = unreachable_cause(error)
    assert found_kind == kind
    assert phrase in text
    assert "10.0.0.7" not in text  # the driver's own text never leaks into the phrase
