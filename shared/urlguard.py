"""Refuse user-supplied URLs that would make our servers talk to our own network (SSRF).

Image URLs and webhook URLs come from users. The cheap static check runs at request time;
the worker runs it again with ``resolve=True`` right before every connection and then dials
only the addresses that passed (see ``worker/fetch.py``), so a DNS answer that changes
between check and connect cannot win.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
"""Longest URL accepted, in characters; longer ones are refused before parsing."""

ALLOWED_SCHEMES = ("http", "https")
"""The only schemes a user may hand us."""

DEFAULT_PORTS = {"http": 80, "https": 443}
"""Port used when the URL names none."""

LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
"""Names that mean this machine without asking DNS (``*.localhost`` is refused too)."""

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL may not be fetched; ``reason`` says why in words a user can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvableHost(UnsafeURL):
    """The host name has no address (DNS failure); not an attack, but nothing to fetch."""


@dataclass(frozen=True)
class ParsedTarget:
    """A URL that passed the checks, with the addresses a connection may use."""

    url: str
    scheme: str
    host: str
    """Lower-case host: IDNA (ASCII) for names, canonical text for IP literals (no brackets)."""
    port: int
    addresses: tuple[str, ...]
    """The literal IP, or the checked DNS answers when ``resolve=True``; empty otherwise."""
    is_ip_literal: bool


def check_url(url: str, *, allow_private: bool = False, resolve: bool = False) -> ParsedTarget:
    """Check a user-supplied http(s) URL and return where it points; raise ``UnsafeURL`` if it may not be used.

    ``allow_private`` (dev and tests only) skips the address-class checks, never the syntax ones.
    ``resolve`` also looks the host up and refuses it if any answer is unsafe.
    """
    scheme, host, port = _split(url)
    literal = _parse_ip_literal(host)
    if literal is not None:
        if not allow_private:
            _refuse_unsafe_address(literal)
        return ParsedTarget(url, scheme, str(literal), port, (str(literal),), True)

    host = _normalise_name(host)
    if not allow_private and (host in LOCALHOST_NAMES or host.endswith(".localhost")):
        raise UnsafeURL(f"host {host} points to this machine")
    addresses: tuple[str, ...] = ()
    if resolve:
        addresses = _resolve(host, port)
        if not allow_private:
            for address in addresses:
                _refuse_unsafe_address(ipaddress.ip_address(address), host=host)
    return ParsedTarget(url, scheme, host, port, addresses, False)


def unsafe_reason(address: IPAddress) -> str | None:
    """Name the class that makes ``address`` off limits (``"private"``, ``"loopback"``...), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return unsafe_reason(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _SHARED_ADDRESS_SPACE:
        return "in the shared (carrier-grade NAT) range"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not publicly routable"
    return None


def _split(url: str) -> tuple[str, str, int]:
    """Syntax checks; return (scheme, raw lower-case host, port)."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise UnsafeURL("URL contains spaces or control characters")
    if "\\" in url:
        raise UnsafeURL("URL contains a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"URL is malformed ({exc})") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise UnsafeURL("URL has no scheme (expected http:// or https://)")
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL(f"only http and https URLs are allowed, not {scheme}:")
    if "@" in parts.netloc:
        raise UnsafeURL("URL must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL("URL has no host")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif not 0 < port < 65536:
        raise UnsafeURL(f"URL has an invalid port {port}")
    if parts.netloc.startswith("["):
        host = "[" + host + "]"
    return scheme, host, port


def _parse_ip_literal(host: str) -> IPAddress | None:
    """Return the address for ``[v6]`` and every numeric IPv4 spelling; None for a name."""
    if host.startswith("["):
        inner = host[1:-1]
        if "%" in inner:
            raise UnsafeURL("IPv6 zone identifiers are not allowed in URLs")
        try:
            return ipaddress.IPv6Address(inner)
        except ValueError as exc:
            raise UnsafeURL(f"host [{inner}] is not a valid IPv6 address") from exc
    ascii_host = _to_ascii(host)
    if not _ends_in_number(ascii_host):
        return None
    address = _parse_ipv4(ascii_host)
    if address is None:
        raise UnsafeURL(f"host {host} looks like an IP address but is malformed")
    return address


def _to_ascii(host: str) -> str:
    """IDNA-encode a Unicode name; NFKC turns full-width digits into ASCII ones here."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise UnsafeURL(f"host {host} is not a valid host name") from exc


def _ends_in_number(host: str) -> bool:
    """WHATWG URL rule: a host whose last label is numeric is an IPv4 address or invalid."""
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    last = labels[-1]
    if last.isdigit() and last.isascii():
        return True
    return last[:2] == "0x" and all(ch in "0123456789abcdef" for ch in last[2:])


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``0x7f.1`` like inet_aton does."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_parse_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):  # type: ignore[operator]
        return None
    value = last
    for index, n in enumerate(head):
        value += n * 256 ** (3 - index)  # type: ignore[operator]
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(part: str) -> int | None:
    if part[:2] == "0x":
        digits, alphabet, base = part[2:], "0123456789abcdef", 16
    elif len(part) > 1 and part[0] == "0":
        digits, alphabet, base = part[1:], "01234567", 8
    else:
        digits, alphabet, base = part, "0123456789", 10
    if part == "" or not all(ch in alphabet for ch in digits):
        return None
    return int(digits, base) if digits else 0


def _normalise_name(host: str) -> str:
    name = _to_ascii(host)
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or not set(name) <= _HOST_CHARS
        or any(not 0 < len(label) <= 63 for label in labels)
    ):
        raise UnsafeURL(f"host {host} is not a valid host name")
    return name


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _refuse_unsafe_address(address: IPAddress, *, host: str | None = None) -> None:
    reason = unsafe_reason(address)
    if reason is None:
        return
    shown = str(address)
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        shown += f" ({embedded})"
    if host is None:
        raise UnsafeURL(f"address {shown} is {reason}")
    # The user learns only that the host is refused: how our resolver sees internal names
    # (which exist, what they point at) is for the operator's log.
    log.warning("refused host %s: its address %s is %s", host, shown, reason)
    raise UnsafeURL(f"host {host} is not allowed")


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHost(f"host {host} could not be resolved") from exc
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(f"host {host} could not be resolved")
    return tuple(addresses)
