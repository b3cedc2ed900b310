"""§06 HTTP and SSE: the incremental parser, retry delays, CA/proxy configuration."""
import json
import random

import pytest

import codex

pytestmark = pytest.mark.timeout(60)

STREAM = (
    b": a comment\n"
    b"event: response.created\n"
    b"data: {\"type\":\"response.created\"}\n\n"
    b"id: 7\n"
    b"data: line one\n"
    b"data: line two\n\n"
    b"data: {\"type\":\"x\",\"text\":\"caf\xc3\xa9 \xe2\x9c\x93\"}\n\n"
    b"data:no-space\n\n"
)


def _collect(chunks):
    parser = codex.SseParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.finish())
    return [(e.event, e.data) for e in events]


EXPECTED = [
    ("response.created", '{"type":"response.created"}'),
    ("message", "line one\nline two"),
    ("message", '{"type":"x","text":"café ✓"}'),
    ("message", "no-space"),
]


def test_parser_whole_stream():
    assert _collect([STREAM]) == EXPECTED


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_parser_every_split_point_and_line_ending(ending):
    data = STREAM.replace(b"\n", ending)
    for cut in range(len(data)):
        assert _collect([data[:cut], data[cut:]]) == EXPECTED, (ending, cut)
    assert _collect([data[i:i + 1] for i in range(len(data))]) == EXPECTED


def test_parser_random_chunking_of_big_stream():
    payloads = [json.dumps({"type": "response.output_text.delta", "delta": "d%d\u00e9" % i}) for i in range(2000)]
    raw = "".join("event: e\r\ndata: %s\r\n\r\n" % p for p in payloads).encode()
    rng = random.Random(4)
    chunks, i = [], 0
    while i < len(raw):
        n = rng.randint(1, 300)
        chunks.append(raw[i:i + n])
        i += n
    assert [d for _, d in _collect(chunks)] == payloads


def test_parser_id_and_event_reset():
    parser = codex.SseParser()
    evs = parser.feed(b"event: a\nid: 1\ndata: x\n\ndata: y\n\n")
    assert [(e.event, e.id, e.data) for e in evs] == [("a", "1", "x"), ("message", "1", "y")]
    assert parser.feed(b"event: only-a-name\n\n") == []


def test_backoff_grows_with_jitter():
    for attempt, base in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6)):
        for _ in range(20):
            d = codex.backoff(attempt)
            assert base * 0.9 <= d < base * 1.1 + 1e-9
    assert codex.backoff(50) <= codex.BACKOFF_CAP_S * 1.1


def test_retry_after_headers():
    assert codex.retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert codex.retry_after_seconds({"retry-after": "3"}) == 3.0
    assert codex.retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert codex.retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert codex.retry_after_seconds({}) is None
    assert codex.retry_after_seconds({"retry-after": "99999"}) == codex.RETRY_AFTER_CAP_S


def test_ca_bundle_env(tmp_path):
    with pytest.raises(codex.ConfigError) as err:
        codex.http_client(environ={"CODEX_CA_CERTIFICATE": str(tmp_path / "missing.pem")})
    assert "CODEX_CA_CERTIFICATE" in str(err.value) and "missing.pem" in str(err.value)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(codex.ConfigError) as err:
        codex.http_client(environ={"SSL_CERT_FILE": str(bad)})
    assert "SSL_CERT_FILE" in str(err.value)


def test_ca_bundle_loads_a_real_pem(tmp_path):
    import ssl

    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile or paths.openssl_cafile
    if not cafile or not codex.os.path.isfile(cafile):
        pytest.skip("no system CA bundle file")
    client = codex.http_client(environ={"CODEX_CA_CERTIFICATE": cafile})
    client.close()
