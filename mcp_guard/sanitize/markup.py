"""Markup that makes the client fetch or run something when the model's answer is rendered.

A chat client renders the model's Markdown and HTML. Whatever it loads on its own - an image, a
``srcset`` candidate, a video ``poster``, a CSS ``url()`` or ``@import``, an SVG ``<image>`` - tells
the host that serves it what sat in its query string, without a click; a ``javascript:`` link runs
code in the client when clicked. The instruction checks see an inline image (``![](...)``); this
module reads the forms they cannot: reference-style definitions (``[p]: https://...`` far from the
``![x][p]`` that uses it), HTML attributes by tag, CSS, entity-encoded schemes and one-pixel or
unlabelled images whose only purpose is to be fetched. It reads markup structure, not wording, so
it knows nothing about the sentence around a link.
"""

from __future__ import annotations

import html
import re

from ..model import Finding

#: A link target, a reference definition or a URL attribute that starts with a script scheme.
_SCRIPT = re.compile(
    r"(?:\]\(\s*<?|^[ ]{0,3}\[[^\]\n]{1,100}\]:\s*<?"
    r"|\b(?:href|src|action|formaction|data|xlink:href)\s*=\s*[\"']?)"
    r"\s*(?:java|vb)script:",
    re.IGNORECASE | re.MULTILINE,
)
#: ``[label]: destination ...`` at the start of a line (CommonMark link reference definition).
_REF_DEF = re.compile(r"^[ ]{0,3}\[([^\]\n]{1,100})\]:[ \t]*<?([^\s<>]+)>?(.*)$", re.MULTILINE)
#: ``![alt][label]``, ``![label][]`` and ``![label]`` not followed by ``(`` or ``[``.
_REF_IMAGE = re.compile(r"!\[([^\]\n]{0,200})\](?:\[([^\]\n]{0,100})\]|(?![(\[]))")
#: A query value that is a slot for the model to fill: ``{x}``, ``<x>``, ``__X__``, ``UPPER_SNAKE``.
_SLOT = re.compile(
    r"[?&#][^=&#\s]{0,40}=(?:\{[^}\n]{0,80}\}|<[^>\n]{0,80}>|%7B|\[[^\]\n]{1,80}\]|__\w+__|(?!YOUR_)[A-Z][A-Z0-9]*_[A-Z0-9_]+\b)"
)
#: An inline Markdown link or image target, or an ``href``/``src`` value (up to 300 characters, with spaces:
#: a slot may be written as ``{stated income}``).
_INLINE_TARGET = re.compile(
    r"\]\(\s*<?(https?://[^)\n]{1,300})|\b(?:href|src)\s*=\s*[\"'](https?://[^\"'\n]{1,300})"
)
_TAG = re.compile(r"<([a-zA-Z][\w:-]{0,20})\b([^<>]{0,2000})>")
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_CSS_URL = re.compile(r"""\burl\(\s*["']?([^"')\s]+)|@import\s+["']([^"'\s]+)""", re.IGNORECASE)
#: Attributes a client fetches on render, by tag (``*``: any tag).
_FETCHED = {
    "*": ("srcset", "poster", "background"),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "feimage": ("href", "xlink:href"),
    "link": ("href",),
    "object": ("data",),
}
_SRC_TAGS = frozenset(
    {"img", "iframe", "frame", "embed", "script", "audio", "video", "source", "track", "input"}
)
_EMPTY_ALT_IMAGE = re.compile(r"!\[\s*\]\(\s*<?(?:https?:)?//")
#: "script" in any case, without the cost of a case-insensitive search.
_SCRIPT_WORD = re.compile(r"[sS][cC][rR][iI][pP][tT]")


def may_have_markup(text: str) -> bool:
    """Cheap necessary condition for :func:`markup_findings` (false positives fine)."""
    if not ("<" in text or "](" in text or "]:" in text or "url(" in text):
        return False
    return "//" in text or "&#" in text or _SCRIPT_WORD.search(text) is not None


def _remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "//")) or url[:8].lower().startswith(
        ("http://", "https://")
    )


def _beacon(url: str) -> bool:
    """A remote URL whose query carries something (``?``, then at least one character)."""
    if not _remote(url):
        return False
    query = url.partition("?")[2]
    return bool(query.strip("&#"))


def reference_definitions(text: str) -> dict[str, str]:
    """Label (normalised: case-folded, inner spaces collapsed) -> destination; the first wins."""
    out: dict[str, str] = {}
    if "]:" not in text:
        return out
    for m in _REF_DEF.finditer(text):
        out.setdefault(" ".join(m.group(1).split()).lower(), m.group(2))
    return out


def _fetched_urls(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(tag, url, attributes) for each URL an HTML tag or CSS makes the client fetch."""
    out: list[tuple[str, str, dict[str, str]]] = []
    if "<" in text:
        for tag_match in _TAG.finditer(text):
            tag = tag_match.group(1).lower()
            attrs = {
                a.group(1).lower(): html.unescape(a.group(2) or a.group(3) or a.group(4) or "")
                for a in _ATTR.finditer(tag_match.group(2))
            }
            names = _FETCHED["*"] + _FETCHED.get(tag, ()) + (("src",) if tag in _SRC_TAGS else ())
            for name in names:
                value = attrs.get(name)
                if not value:
                    continue
                if name == "srcset":  # "url 1x, url 2x": each candidate's first token
                    out.extend((tag, c.split()[0], attrs) for c in value.split(",") if c.strip())
                else:
                    out.append((tag, value.strip(), attrs))
    if "url(" in text or "@import" in text:
        out.extend(("style", m.group(1) or m.group(2), {}) for m in _CSS_URL.finditer(html.unescape(text)))
    return out


def _tiny(attrs: dict[str, str]) -> bool:
    """Sized to one pixel or none: an image nobody is meant to see."""
    sizes = [attrs.get("width", ""), attrs.get("height", "")]
    style = attrs.get("style", "").replace(" ", "").lower()
    sizes += re.findall(r"(?:^|;)(?:width|height):(\d+)px", style)
    return any(s.strip().rstrip("px") in ("0", "1") for s in sizes if s)


def markup_findings(text: str, field: str, *, definition: bool) -> list[Finding]:
    """Findings for markup in one text field. ``definition``: the text is a tool, prompt or
    resource definition (where an unlabelled remote image is there only to be fetched)."""
    if not may_have_markup(text):
        return []
    out: list[Finding] = []
    plain = html.unescape(text) if "&" in text else text
    plain = plain.replace("\t", "").replace("\r", "").replace("\x00", "")
    script = _SCRIPT.search(plain)
    if script:
        message = f"link runs a script when clicked: {plain[script.start() : script.end() + 40]!r}"
        out.append(Finding("exfil.script-link", "medium", field, message))
    for target in _INLINE_TARGET.finditer(text):
        url = target.group(1) or target.group(2)
        if len(_SLOT.findall(url)) >= 2:  # one slot may be an honest template; a form to fill is not
            message = f"link carries data to fill in: {url[:80]!r}"
            out.append(Finding("exfil.url-template", "high", field, message))
            break
    definitions = reference_definitions(text)
    for line in _REF_DEF.finditer(text):
        if _remote(line.group(2)) and _SLOT.search(line.group(2) + line.group(3)):
            message = f"link definition carries data to fill in: {line.group(0).strip()[:80]!r}"
            out.append(Finding("exfil.url-template", "high", field, message))
            break
    if definitions:
        for m in _REF_IMAGE.finditer(text):
            label = " ".join((m.group(2) or m.group(1)).split()).lower()
            if _beacon(definitions.get(label, "")):
                message = f"reference-style image with a query string (beacon): {definitions[label][:80]!r}"
                out.append(Finding("exfil.image", "medium", field, message))
                break
    for tag, url, attrs in _fetched_urls(text):
        tracking = tag == "img" and _remote(url) and (_tiny(attrs) or (definition and not attrs.get("alt")))
        if _beacon(url) or tracking:
            message = f"<{tag}> makes the client fetch {url[:80]!r} when rendered"
            out.append(Finding("exfil.image", "medium", field, message))
            break
    if definition and _EMPTY_ALT_IMAGE.search(text):
        message = "unlabelled remote image in a definition (tracking)"
        out.append(Finding("exfil.image", "medium", field, message))
    return out
