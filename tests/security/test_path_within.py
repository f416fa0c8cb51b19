"""``path_within`` cannot be walked out of its root with percent-encoded dots or slashes, in any scheme.

It used to decode only ``file://`` URIs, so ``s3://bucket/data/%2e%2e/secret`` counted as inside
``s3://bucket/data`` although any server that decodes the URI reads ``s3://bucket/secret``.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.policy.celfuncs import path_within


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("s3://bucket/data/%2e%2e/secret", "s3://bucket/data"),
        ("s3://bucket/data/%2E%2E/secret", "s3://bucket/data"),
        ("s3://bucket/data/.%2e/secret", "s3://bucket/data"),
        ("s3://bucket/data/%252e%252e/secret", "s3://bucket/data"),  # decoded twice by some readers
        ("s3://bucket/data/..%2fsecret", "s3://bucket/data"),
        ("s3://bucket/data/..%5csecret", "s3://bucket/data"),
        ("https://host/data/%2e%2e/admin", "https://host/data"),
        ("/srv/data/%2e%2e/etc/passwd", "/srv/data"),  # a plain path some server will decode
        ("/srv/data/a%2fb/../..", "/srv/data"),  # split-then-decode readers see "/": one level up
        ("file:///srv/data/%252e%252e/etc", "/srv/data"),
        # The authority is not a path segment, and a query is not part of a URL's path.
        ("s3://../s3://bucket/data/x", "s3://bucket/data"),
        ("s3://other/data/x", "s3://bucket/data"),
        ("s3://bucket/secret?/../data/f", "s3://bucket/data"),
        ("gs://bucket/data/x", "s3://bucket/data"),
    ],
)
def test_escapes_are_not_within(path: str, root: str) -> None:
    assert path_within(path, root) is False


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("s3://bucket/data/x", "s3://bucket/data"),
        ("S3://bucket/data/a/../b", "s3://bucket/data"),
        ("s3://bucket/data/f?versionId=3", "s3://bucket/data"),
        ("s3://bucket/data/my%20file", "s3://bucket/data"),
        ("file:///srv/my%20data/x", "/srv/my data"),
        ("/srv/100%25/x", "/srv/100%25"),
    ],
)
def test_ordinary_paths_stay_within(path: str, root: str) -> None:
    assert path_within(path, root) is True


# --- property: whatever reading a server applies, a path judged within stays within --------------

_SEGMENTS = st.sampled_from(
    [
        "a",
        "b",
        "data",
        "secret",
        ".",
        "..",
        "%2e%2e",
        "%2E%2e",
        ".%2e",
        "%2e",
        "%252e%252e",
        "%25252e%25252e",
        "a%2fb",
        "a%2Fb",
        "..%2f..",
        "..%5c..",
        "a%5cb",
        "%2f",
        "a%20b",
        "100%25",
        "x?",
        "x#y",
        "",
    ]
)
_SEPARATORS = st.sampled_from(["/", "\\"])


@st.composite
def _paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_SEPARATORS, _SEGMENTS), max_size=8))
    return "".join(sep + seg for sep, seg in parts)


def _decode_fully(value: str) -> str:
    for _ in range(20):
        decoded = unquote(value)
        if decoded == value:
            return value
        value = decoded
    return value


def _inside(path: str, root: str) -> bool:
    p = posixpath.normpath(path.replace("\\", "/"))
    r = posixpath.normpath(root.replace("\\", "/"))
    return p == r or p.startswith(r.rstrip("/") + "/")


def _split_then_decode(path: str, depth: int) -> list[str]:
    """A reader that splits on separators first, then decodes each segment ``depth`` times."""
    out: list[str] = []
    for raw in re.split(r"[/\\]", path):
        seg = raw
        for _ in range(depth):
            seg = unquote(seg)
        if seg == "..":
            if out:
                out.pop()
            else:
                return ["..", "escaped"]
        elif seg not in ("", "."):
            out.append(seg.replace("/", "\x01").replace("\\", "\x01"))
    return out


def _readings(tail: str) -> list[str]:
    """The paths different servers may reach for ``ROOT + tail``, relative to the root."""
    out = [tail, _decode_fully(tail)]
    for depth in range(4):
        level = tail
        for _ in range(depth):
            level = unquote(level)
        out.append(level)
    for cut in (tail, re.split(r"[?#]", tail, maxsplit=1)[0]):
        out.append(cut)
        out.append(_decode_fully(cut))
    return out


@settings(max_examples=400, deadline=None)
@given(tail=_paths(), uri=st.booleans())
def test_within_means_within_for_every_reading(tail: str, uri: bool) -> None:
    root_path = "/srv/data"
    path = ("s3://bucket" if uri else "") + root_path + tail
    root = ("s3://bucket" if uri else "") + root_path
    if not path_within(path, root):
        return
    for reading in _readings(tail):
        assert _inside(root_path + reading, root_path), (path, reading)
    for depth in range(4):
        segments = _split_then_decode(root_path + tail, depth)
        assert segments[:2] == ["srv", "data"], (path, depth, segments)


@settings(max_examples=200, deadline=None)
@given(tail=_paths())
def test_file_uris_and_plain_paths_agree(tail: str) -> None:
    # A file URI is judged as its (decoded) path; no encoded separator makes either one "within".
    plain = path_within("/srv/data" + tail, "/srv/data")
    uri = path_within("file:///srv/data" + tail, "/srv/data")
    if "%" not in tail and "?" not in tail and "#" not in tail:
        assert plain == uri
    if uri:
        assert _inside("/srv/data" + _decode_fully(tail), "/srv/data")
