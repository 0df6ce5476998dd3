"""The client address behind trusted proxies: the header is believed hop by hop from the right only."""

from alarmhub_runtime import TrustedProxies


def test_no_trusted_proxies_ignores_the_header() -> None:
    assert TrustedProxies("").client("203.0.113.9", "127.0.0.1") == "203.0.113.9"


def test_untrusted_peer_cannot_name_a_client() -> None:
    assert TrustedProxies("10.0.0.0/8").client("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_chain_of_trusted_proxies() -> None:
    p = TrustedProxies("10.0.0.0/8, 192.168.1.1")
    # the client wrote a fake first hop; our proxies appended the real one
    assert p.client("10.0.0.2", "1.2.3.4, 198.51.100.7, 192.168.1.1") == "198.51.100.7"
    assert p.client("10.0.0.2", "garbage") == "10.0.0.2"
    assert p.client("10.0.0.2", "10.0.0.3") == "10.0.0.3"  # every hop trusted: the leftmost
