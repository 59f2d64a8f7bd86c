"""Sphinx extension of the course: an inline script an extension registers late is written once.

Sphinx 7.4 writes such a script into every page twice. An extension that calls
``app.add_js_file(None, body=...)`` after the HTML builder has been set up (sphinx-togglebutton on
``builder-inited``, sphinx-thebe on ``env-before-read-docs``) puts the script both into Sphinx's
registry and, with the file name ``None``, into the builder's list. Before writing, the builder adds
every registered script again, this time with the file name ``""``; its check for repeats compares
file names, ``None`` is not ``""``, and the page gets a second copy. A second copy of
sphinx-thebe's ``const THEBE_JS_URL = ...`` threw "Identifier 'THEBE_JS_URL' has already been
declared" in the reader's browser on every page (sphinx-togglebutton's ``var`` merely ran twice).

Once every document is read (``env-updated``, before the builder prepares writing), this handler
takes those ``None`` copies out of the builder's list: the builder then adds each registered script
exactly once itself. tests/browser/test_layout_mobile.py checks that no page lists a script twice
and that no page logs a JavaScript error.
"""

from __future__ import annotations

from typing import Any


def drop_early_copies(app: Any) -> list[str]:
    """Remove from the HTML builder's scripts the inline ones also in the registry; their bodies."""
    scripts = getattr(app.builder, "_js_files", None)
    if not isinstance(scripts, list):
        return []
    registered = [attrs.get("body") for filename, attrs in app.registry.js_files if not filename]
    dropped = []
    for script in list(scripts):
        body = getattr(script, "attributes", {}).get("body")
        if getattr(script, "filename", "") is None and body in registered:
            scripts.remove(script)
            dropped.append(body)
    return dropped


def _on_env_updated(app: Any, env: Any) -> None:
    # a handler of env-updated returns the documents to write again: nothing here
    drop_early_copies(app)


def setup(app: Any) -> dict[str, Any]:
    app.connect("env-updated", _on_env_updated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
