from __future__ import annotations

import logging
import socket

import pytest

from shared.urlguard import MAX_URL_LENGTH, UnresolvableHost, UnsafeURL, check_url

# Every URL here must be refused statically (no DNS), with the reason fragment shown.
SSRF_CORPUS = [
    ("http://127.0.0.1/", "loopback"),
    ("http://2130706433/", "address 127.0.0.1 is loopback"),
    ("http://0x7f000001/", "address 127.0.0.1 is loopback"),
    ("http://0X7F000001/", "address 127.0.0.1 is loopback"),
    ("http://017700000001/", "address 127.0.0.1 is loopback"),
    ("http://0177.0.0.1/", "address 127.0.0.1 is loopback"),
    ("http://0177.0000.0000.0001/", "address 127.0.0.1 is loopback"),
    ("http://127.1/", "address 127.0.0.1 is loopback"),
    ("http://127.0.1/", "address 127.0.0.1 is loopback"),
    ("http://0x7f.1/", "address 127.0.0.1 is loopback"),
    ("http://0x7f.0x0.0x0.0x1/", "address 127.0.0.1 is loopback"),
    ("http://127.0.0.1.:8080/", "address 127.0.0.1 is loopback"),
    ("http://１２７.０.０.１/", "address 127.0.0.1 is loopback"),
    ("http://[::1]/", "address ::1 is loopback"),
    ("http://[::ffff:127.0.0.1]/", "(127.0.0.1) is loopback"),
    ("http://[::ffff:7f00:1]/", "(127.0.0.1) is loopback"),
    ("http://[0:0:0:0:0:ffff:169.254.169.254]/", "(169.254.169.254) is link-local"),
    ("http://[64:ff9b::a00:1]/", "(10.0.0.1) is private"),
    ("http://[2002:7f00:1::]/", "(127.0.0.1) is loopback"),
    ("http://0.0.0.0/", "address 0.0.0.0 is unspecified"),
    ("http://0/", "address 0.0.0.0 is unspecified"),
    ("http://[::]/", "address :: is unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local"),
    ("http://2852039166/", "address 169.254.169.254 is link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.0.0.5/", "address 10.0.0.5 is private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "shared"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[fc00::1]/", "private"),
    ("http://240.0.0.1/", "address 240.0.0.1"),
    ("http://255.255.255.255/", "address 255.255.255.255"),
    ("http://localhost/", "localhost"),
    ("http://LOCALHOST:8080/", "localhost"),
    ("http://foo.localhost/", "foo.localhost"),
    ("http://localhost./", "localhost"),
    ("file:///etc/passwd", "only http and https"),
    ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
    ("ftp://example.com/a.jpg", "only http and https"),
    ("dict://example.com:11211/", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("example.com/a.jpg", "no scheme"),
    ("//example.com/a.jpg", "no scheme"),
    ("http:///a.jpg", "no host"),
    ("http://example.com@127.0.0.1/", "user name or password"),
    ("http://user:pass@example.com/", "user name or password"),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://example.com /a.jpg", "spaces or control characters"),
    ("http://example.com/a\r\nHost: evil", "spaces or control characters"),
    ("http://example.com:0/", "invalid port"),
    ("http://example.com:99999/", "malformed"),
    ("http://example.com:http/", "malformed"),
    ("http://256.1.1.1/", "malformed"),
    ("http://1.2.3.4.5/", "malformed"),
    ("http://0x100000000/", "malformed"),
    ("http://foo.123/", "malformed"),
    ("http://[fe80::1%25eth0]/", "zone"),
    ("http://[not-v6]/", "malformed"),
    ("http://exa_mple!.com/", "not a valid host name"),
    ("http://a..b.com/", "not a valid host name"),
    ("http://%31%32%37.0.0.1/", "malformed"),
    ("http://%6c%6fcalhost/", "not a valid host name"),
    ("http://example.com/" + "a" * MAX_URL_LENGTH, "longer than 2048"),
]


@pytest.mark.parametrize(("url", "reason"), SSRF_CORPUS)
def test_ssrf_corpus_is_refused(url, reason):
    with pytest.raises(UnsafeURL) as excinfo:
        check_url(url)

    assert reason in excinfo.value.reason
    assert str(excinfo.value) == excinfo.value.reason


def test_corpus_is_large_enough():
    assert len(SSRF_CORPUS) >= 25


@pytest.fixture
def no_dns(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("DNS must not be used here")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://example.com/a.jpg", "example.com", 443),
        ("http://example.com:8080/a.jpg?x=1#y", "example.com", 8080),
        ("HTTPS://Images.Example.COM/a.jpg", "images.example.com", 443),
        ("https://cdn.example.com./a.jpg", "cdn.example.com", 443),
        ("https://пример.рф/товар.jpg", "xn--e1afmkfd.xn--p1ai", 443),
        ("https://a_b.example.com/a.jpg", "a_b.example.com", 443),
        ("https://example.com:/a.jpg", "example.com", 443),
    ],
)
def test_public_names_pass_without_dns(no_dns, url, host, port):
    target = check_url(url)

    assert (target.host, target.port, target.addresses, target.is_ip_literal) == (host, port, (), False)
    assert target.url == url


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://93.184.216.34/a.jpg", "93.184.216.34"),
        ("http://1572395042/a.jpg", "93.184.216.34"),
        ("http://8.8.8.8/", "8.8.8.8"),
        ("http://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:808:808"),
    ],
)
def test_public_ip_literals_pass(no_dns, url, address):
    target = check_url(url, resolve=True)

    assert target.is_ip_literal
    assert target.host == address
    assert target.addresses == (address,)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5000/a.png", "http://localhost/a.png", "http://[::1]/", "http://10.0.0.5/"]
)
def test_allow_private_skips_address_checks(no_dns, url):
    assert check_url(url, allow_private=True).url == url


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://user@127.0.0.1/",
        "http://127.0.0.1:0/",
        "http://0x1ffffffff/",
        "gopher://localhost/",
    ],
)
def test_allow_private_keeps_the_syntax_checks(url):
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=True)


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer getaddrinfo from ``answers``; record the names asked for."""
    asked: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        result = []
        for address in answers[host]:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_resolve_returns_the_checked_addresses(monkeypatch):
    asked = fake_dns(
        monkeypatch, {"images.example.com": ["93.184.216.34", "2606:2800:220:1::248", "93.184.216.34"]}
    )

    target = check_url("https://images.example.com/a.jpg", resolve=True)

    assert asked == ["images.example.com"]
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::248")


@pytest.mark.parametrize(
    ("answers", "logged"),
    [
        (["10.0.0.5"], "address 10.0.0.5 is private"),
        (["93.184.216.34", "127.0.0.1"], "address 127.0.0.1 is loopback"),
        (["169.254.169.254"], "address 169.254.169.254 is link-local"),
        (["::ffff:10.1.2.3"], "(10.1.2.3) is private"),
        (["fe80::1%eth0"], "address fe80::1 is link-local"),
    ],
)
def test_resolve_refuses_if_any_answer_is_unsafe(monkeypatch, caplog, answers, logged):
    fake_dns(monkeypatch, {"rebind.example.com": answers})

    with caplog.at_level(logging.WARNING, logger="shared.urlguard"), pytest.raises(UnsafeURL) as excinfo:
        check_url("http://rebind.example.com/a.jpg", resolve=True)

    # The user is told the host is refused, never what our resolver answered for it.
    assert excinfo.value.reason == "host rebind.example.com is not allowed"
    assert logged in caplog.text and "rebind.example.com" in caplog.text


def test_resolve_with_allow_private_still_returns_addresses(monkeypatch):
    fake_dns(monkeypatch, {"dev.test": ["127.0.0.1"]})

    target = check_url("http://dev.test:5000/a.jpg", resolve=True, allow_private=True)

    assert target.addresses == ("127.0.0.1",)


def test_unresolvable_host(monkeypatch):
    fake_dns(monkeypatch, {})

    with pytest.raises(UnresolvableHost, match="could not be resolved"):
        check_url("https://nowhere.example.com/a.jpg", resolve=True)


def test_localhost_name_is_refused_before_dns(no_dns):
    with pytest.raises(UnsafeURL, match="points to this machine"):
        check_url("http://app.localhost/", resolve=True)
