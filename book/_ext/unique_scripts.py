"""Sphinx extension of the course: every page lists each of its scripts once.

Sphinx 7.4 can write an inline script twice: an extension that registers one (sphinx-thebe's
``const THEBE_JS_URL = ...``) after the builder has started slips past Sphinx's duplicate check,
and the second copy throws "Identifier has already been declared" in the reader's browser on every
page. This handler removes exact repeats (same file or same inline body, same attributes) from the
page's script list, keeping the first of each.
"""

from __future__ import annotations

from typing import Any


def _key(script: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    filename = getattr(script, "filename", script)
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename or ""), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def unique_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Drop repeated entries of the page's ``script_files``, in place, keeping the first."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    # late, so that scripts other handlers add to the page are seen too
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
