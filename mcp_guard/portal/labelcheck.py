"""``[[labels]]`` selectors that a portal can never match, found when it starts.

Labels see an upstream's own names (``fetch_page``), never the portal's
prefixed ones (``web__fetch_page``), and they select upstreams by name. Two
mistakes therefore label nothing without any error, and a flow built on
them silently never fires:

- a ``tools`` / ``prompts`` glob written with an upstream's portal prefix;
- a second ``[[servers]]`` name for the same upstream (same ``url``, or the
  same ``command``, ``args`` and ``cwd``) that the label's ``servers`` leave
  out: the same tools, unlabelled, under another name.

Both are reported (logged by the portal) with the entry and what to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import UpstreamSection
from ..policy.flows import Labeler, LabelTag

__all__ = ["label_problems"]

#: Kinds whose portal names carry the upstream's prefix (resources keep their URIs).
_PREFIXED = ("tool", "prompt")


def label_problems(policy: Any, specs: Sequence[UpstreamSection]) -> list[str]:
    """What in the policy's ``[[labels]]`` cannot match as meant behind these upstreams."""
    compiled = getattr(policy, "current", policy)  # a ReloadingPolicy: the policy in force
    labeler = getattr(compiled, "labeler", None)
    if not isinstance(labeler, Labeler) or not labeler.tags:
        return []
    out: list[str] = []
    for i, tag in enumerate(labeler.tags):
        out += _prefixed(i, tag, specs)
    out += _aliases(labeler.tags, specs)
    return out


def _prefixed(index: int, tag: LabelTag, specs: Sequence[UpstreamSection]) -> list[str]:
    out: list[str] = []
    for kind in _PREFIXED:
        names = tag.kinds.get(kind)
        if names is None:
            continue
        for j, pattern in enumerate(names.patterns):
            for spec in specs:
                prefix = spec.effective_prefix
                if prefix and pattern.startswith(prefix) and len(pattern) > len(prefix):
                    out.append(
                        f"labels[{index}].{kind}s[{j}]: {pattern!r} starts with the portal prefix"
                        f" {prefix!r} of upstream {spec.name!r}, but labels match the upstream's own"
                        f" names: it labels nothing (did you mean {pattern[len(prefix) :]!r}"
                        f" with servers = [{spec.name!r}]?)"
                    )
    return out


def _endpoint(spec: UpstreamSection) -> tuple[Any, ...]:
    return ("url", spec.url) if spec.url is not None else ("command", spec.command, *spec.args, spec.cwd)


def _aliases(tags: Sequence[LabelTag], specs: Sequence[UpstreamSection]) -> list[str]:
    out: list[str] = []
    first: dict[tuple[Any, ...], UpstreamSection] = {}
    for spec in specs:
        seen = first.setdefault(_endpoint(spec), spec)
        if seen is spec:
            continue
        differ = [
            i
            for i, tag in enumerate(tags)
            if tag.servers is not None and tag.servers.match(seen.name) != tag.servers.match(spec.name)
        ]
        if differ:
            shown = ", ".join(f"labels[{i}]" for i in differ)
            out.append(
                f"upstreams {seen.name!r} and {spec.name!r} run the same server, but {shown} label"
                f" only one of them: the other serves the same tools unlabelled (name both in"
                f" `servers`, or remove one)"
            )
    return out
