"""The request head the forwarding client writes (``proxy.http1.request``) and the origin
split it writes it for (``proxy.http1.origin``): exactly our bytes, or a refusal.

Expected heads are literals written from RFC 9112 and from what aiohttp, the previous
client, sent for the same request (captured from a raw socket), never computed by the code.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.http1.errors import ConnectFailed, UnsafeRequest
from proxy.http1.origin import Origin, parse_origin
from proxy.http1.request import encode_request

H = "venue.example"


def test_get_without_body_has_host_first_and_nothing_added() -> None:
    head = encode_request("GET", "/v2/x?a=1", [("x-coinex-key", "k"), ("accept", "*/*")], b"", H)
    assert head == b"GET /v2/x?a=1 HTTP/1.1\r\nHost: venue.example\r\nx-coinex-key: k\r\naccept: */*\r\n\r\n"


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "PATCH"])
def test_empty_body_of_a_non_get_says_content_length_zero(method: str) -> None:
    assert encode_request(method, "/o", [], b"", H) == (
        f"{method} /o HTTP/1.1\r\nHost: venue.example\r\nContent-Length: 0\r\n\r\n".encode()
    )


def test_head_without_body_has_no_content_length() -> None:
    assert encode_request("HEAD", "/o", [], b"", H) == b"HEAD /o HTTP/1.1\r\nHost: venue.example\r\n\r\n"


def test_body_is_framed_by_content_length_after_our_headers() -> None:
    head = encode_request("POST", "/o", [("content-type", "application/json")], b'{"a":1}', H)
    assert head == (
        b"POST /o HTTP/1.1\r\nHost: venue.example\r\ncontent-type: application/json\r\n"
        b'Content-Length: 7\r\n\r\n{"a":1}'
    )
    assert b"chunked" not in head.lower()


def test_a_get_with_a_body_still_says_its_length() -> None:
    assert encode_request("GET", "/o", [], b"ab", H) == (
        b"GET /o HTTP/1.1\r\nHost: venue.example\r\nContent-Length: 2\r\n\r\nab"
    )


def test_a_carried_host_is_kept_in_place_and_not_doubled() -> None:
    head = encode_request("POST", "/x", [("host", "other.example"), ("content-type", "a/b")], b"{}", H)
    assert (
        head == b"POST /x HTTP/1.1\r\nhost: other.example\r\ncontent-type: a/b\r\nContent-Length: 2\r\n\r\n{}"
    )


def test_header_values_may_carry_tabs_and_latin1() -> None:
    head = encode_request("GET", "/", [("x-a", "a\tb \xe9")], b"", H)
    assert head == b"GET / HTTP/1.1\r\nHost: venue.example\r\nx-a: a\tb \xe9\r\n\r\n"


CONTROL = [chr(c) for c in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]]  # every CTL but HTAB


@pytest.mark.parametrize(
    "target",
    [
        "/a b",
        "/a\tb",
        "/a\r\nX-Injected: 1",
        "/a\nb",
        "/a\x00",
        "/a\x7f",
        "/\xe9",
        "/\u2028",
        "",
        "*",
        "http://evil.example/x",
        "x/y",
    ],
)
def test_a_target_that_is_not_printable_origin_form_is_refused(target: str) -> None:
    with pytest.raises(UnsafeRequest) as caught:
        encode_request("GET", target, [], b"", H)
    assert target not in str(caught.value) or target == ""


@pytest.mark.parametrize("char", CONTROL)
def test_a_control_character_in_the_target_is_refused(char: str) -> None:
    with pytest.raises(UnsafeRequest):
        encode_request("GET", f"/v2/x?a={char}", [], b"", H)


@pytest.mark.parametrize("char", CONTROL)
def test_a_control_character_in_a_header_value_is_refused(char: str) -> None:
    with pytest.raises(UnsafeRequest) as caught:
        encode_request("GET", "/", [("x-a", f"secret{char}value")], b"", H)
    assert "secret" not in str(caught.value)  # the refusal names the part, never the content


@pytest.mark.parametrize(
    "name", ["", "x a", "x:a", "x\r\ny", "x\x00", "x(a)", "x/a", "é", "x\ta", "x[", "x{", 'x"', "x@"]
)
def test_a_header_name_that_is_not_a_token_is_refused(name: str) -> None:
    with pytest.raises(UnsafeRequest):
        encode_request("GET", "/", [(name, "v")], b"", H)


def test_a_header_value_beyond_latin1_is_refused() -> None:
    with pytest.raises(UnsafeRequest):
        encode_request("GET", "/", [("x-a", "\u20ac")], b"", H)


@pytest.mark.parametrize(
    "headers",
    [
        [("content-length", "5")],
        [("Content-Length", "0")],
        [("transfer-encoding", "chunked")],
        [("Transfer-Encoding", "identity")],
        [("host", "a.example"), ("Host", "b.example")],
    ],
)
def test_framing_headers_of_the_request_own_and_a_second_host_are_refused(headers) -> None:
    with pytest.raises(UnsafeRequest):
        encode_request("POST", "/", headers, b"x", H)


@pytest.mark.parametrize("method", ["", "GET /", "G\rET", "GE\x00T", "GÉT"])
def test_a_method_that_is_not_a_token_is_refused(method: str) -> None:
    with pytest.raises(UnsafeRequest):
        encode_request(method, "/", [], b"", H)


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=200))
def test_any_printable_ascii_target_goes_out_byte_for_byte(rest: str) -> None:
    target = "/" + rest
    head = encode_request("GET", target, [], b"", H)
    assert head.split(b"\r\n", 1)[0] == b"GET " + target.encode("ascii") + b" HTTP/1.1"


@given(
    st.text(max_size=30),
    st.sampled_from(CONTROL),  # C0 and DEL; 0x80-0xFF is obs-text (UTF-8 bytes read as latin-1)
    st.text(max_size=30),
)
def test_any_control_character_anywhere_in_a_value_is_refused(before: str, control: str, after: str) -> None:
    with pytest.raises(UnsafeRequest):
        encode_request("GET", "/", [("x-a", before + control + after)], b"", H)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://venue.example", Origin(False, "venue.example", 80, "venue.example")),
        ("http://venue.example:80", Origin(False, "venue.example", 80, "venue.example")),
        ("http://venue.example:8080", Origin(False, "venue.example", 8080, "venue.example:8080")),
        ("https://API.Venue.example", Origin(True, "api.venue.example", 443, "api.venue.example")),
        ("https://api.venue.example:443", Origin(True, "api.venue.example", 443, "api.venue.example")),
        ("https://api.venue.example:8443", Origin(True, "api.venue.example", 8443, "api.venue.example:8443")),
        ("http://127.0.0.1:9000", Origin(False, "127.0.0.1", 9000, "127.0.0.1:9000")),
        ("http://[::1]:9000", Origin(False, "::1", 9000, "[::1]:9000")),
        ("https://[2001:db8::1]", Origin(True, "2001:db8::1", 443, "[2001:db8::1]")),
        ("https://bücher.example", Origin(True, "xn--bcher-kva.example", 443, "xn--bcher-kva.example")),
    ],
)
def test_origin_split(origin: str, expected: Origin) -> None:
    assert parse_origin(origin) == expected


@pytest.mark.parametrize("origin", ["ftp://venue.example", "ws://venue.example", "http://", "http://h:99999"])
def test_an_origin_that_cannot_be_connected_to_is_a_connect_failure(origin: str) -> None:
    with pytest.raises(ConnectFailed):
        parse_origin(origin)
