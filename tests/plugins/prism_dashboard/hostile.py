"""Hostile strings for every field a person sees, and a check (html.parser) that a page or an SVG
shows them as text: no element, attribute or URL of theirs came alive."""

from __future__ import annotations

from html.parser import HTMLParser

LONG = "L" * 6000 + "<script>alert('long')</script>"
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "attr": '"><img src=x onerror=alert(1)>',
    "single": "'><svg onload=alert(1)>",
    "js_url": "javascript:alert(document.cookie)",
    "style": "</style><script>alert(2)</script>",
    "cdata": "]]><script>alert(3)</script><![CDATA[",
    "template": "{{7*7}}{% raw %}${7*7}",
    "entity": "&lt;script&gt;&amp;",
    "newlines": "line one\nline two\r\n<b>three</b>\u2028four",
    "unicode": "Ünïcödé ✓ 日本語 \u202eevil\u202c 🙂",
    "long": LONG,
}
# Every hostile string at once, for fields that hold one value.
ALL = " | ".join(v for k, v in HOSTILE.items() if k != "long")
ACTIVE_TAGS = {
    "script",
    "img",
    "iframe",
    "object",
    "embed",
    "svg:script",
    "foreignobject",
    "link",
    "meta",
    "base",
    "form",
    "input",
    "audio",
    "video",
    "frame",
    "frameset",
    "math",
}


class Inspect(HTMLParser):
    """Elements, attributes and text of a document, as a browser's tokenizer would split them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def inspect(html: str) -> Inspect:
    parser = Inspect()
    parser.feed(html)
    parser.close()
    return parser


def assert_inert(html: str, allowed_tags: set[str] = frozenset({"meta"}), style_elements: int = 1) -> Inspect:
    """No script or other active element, no on* attribute, no javascript: URL, the page's own
    <style> elements only; returns the parsed document for more checks."""
    doc = inspect(html)
    active = [(t, a) for t, a in doc.tags if t in ACTIVE_TAGS - set(allowed_tags)]
    assert not active, active[:3]
    handlers = [(t, k) for t, a in doc.tags for k in a if k.lower().startswith("on")]
    assert not handlers, handlers[:3]
    urls = [v for _, a in doc.tags for k, v in a.items() if k in ("href", "src", "xlink:href", "action", "formaction")]
    assert not [u for u in urls if u.strip().lower().startswith(("javascript:", "data:", "vbscript:"))], urls
    assert sum(t == "style" for t, _ in doc.tags) == style_elements
    # The hostile characters made no element of their own: every tag is one the templates write.
    return doc


def text_of(doc: Inspect) -> str:
    return "".join(doc.text)
