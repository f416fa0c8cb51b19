"""Terminal output that uses escapes honestly: links, window titles, redrawn progress, overstrike.

Command output in a tool result carries more than colour: ``gcc`` and ``ls --hyperlink`` wrap
names in OSC 8 links, shells set the window title, ``docker pull`` moves the cursor up and
erases a status line to redraw it, progress bars hide the cursor, and ``man`` writes bold as
``N<BS>N``. None of these hides text from the person reading it. :func:`cosmetic` removes them
(for results only) so what remains, a concealed or erased sentence, a cursor jump over text, is
judged as before. An erase counts as cosmetic only when the line it wipes is a short status
line; wiping a sentence is how an escape hides an instruction.
"""

from __future__ import annotations

import re

#: A line of this many words or more, erased or overwritten, is a hidden sentence, not a status.
STATUS_WORDS = 6

#: OSC 0/1/2 window or icon title (BEL or ST terminated).
_TITLE = re.compile(r"\x1b\][012];[^\x07\x1b]{0,200}(?:\x07|\x1b\\)")
#: An OSC 8 hyperlink: target, visible text, closing OSC 8.
_LINK = re.compile(
    r"\x1b\]8;[^;\x07\x1b]*;(?P<url>[^\x07\x1b]+)(?:\x07|\x1b\\)(?P<text>[^\x07]*?)\x1b\]8;;(?:\x07|\x1b\\)"
)
_SGR = re.compile(r"\x1b\[[0-9;]*m")
#: Cursor hide/show, and save/restore around a redraw.
_CURSOR = re.compile(r"\x1b\[\?25[lh]|\x1b[78]")
#: Overstrike bold (``X<BS>X``) and underline (``_<BS>X``), as nroff writes them.
_OVERSTRIKE = re.compile(r"(.)\x08(?=\1)|_\x08(?=.)")
#: Cursor up / to column / erase in line: the pieces of a status-line redraw.
_REDRAW = re.compile(r"(?:\x1b\[\d*[AFGK]|\x1b\[2K)+")


def cosmetic(text: str) -> str:
    """``text`` without the terminal sequences that hide nothing (see the module docstring)."""
    if "\x1b" not in text and "\x08" not in text:
        return text
    out = _TITLE.sub("", text)
    if "\x1b]8;" in out:
        out = _LINK.sub(_honest_link, out)
    out = _CURSOR.sub("", out)
    if "\x08" in out:
        out = _OVERSTRIKE.sub("", out)
    if "\x1b[" in out:
        out = _REDRAW.sub(lambda m: "" if _short_line_before(out, m.start()) else m.group(0), out)
    return out


def _honest_link(match: re.Match[str]) -> str:
    """A link whose visible text is part of its target (a file name, an option's anchor) shows
    where it goes; one whose text names something else is left for the escape check."""
    shown = _SGR.sub("", match["text"]).strip(" -[]()")
    if shown and shown.lower() in match["url"].lower():
        return match["text"]
    return match.group(0)


def _short_line_before(text: str, at: int) -> bool:
    """The line a redraw at ``at`` wipes (the current one, or the one above) is a short status."""
    head = text[:at]
    if head.endswith("\n"):
        head = head[:-1]
    line = head.rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
    return len(line.split()) < STATUS_WORDS


def same_colours(params: list[str]) -> bool:
    """A 24-bit or 256-colour foreground equal to the background in one SGR: text drawn invisibly."""
    fg = bg = None
    i = 0
    while i < len(params):
        if params[i] in ("38", "48") and i + 1 < len(params):
            width = 4 if params[i + 1] == "2" else 2 if params[i + 1] == "5" else 0
            if width:
                colour = tuple(params[i + 2 : i + 1 + width])
                if params[i] == "38":
                    fg = colour
                else:
                    bg = colour
                i += 1 + width
                continue
        i += 1
    return fg is not None and fg == bg
