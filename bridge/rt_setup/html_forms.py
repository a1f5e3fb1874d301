"""A small reader for the HTML forms of RT's web pages (standard library ``html.parser``).

It turns a page into its forms (with what a browser would submit for each), links, RT's result
messages and error boxes. Pure: no HTTP; ``web_session`` does the talking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Option:
    """One ``<option>`` of a ``<select>``."""

    value: str
    label: str
    selected: bool = False
    disabled: bool = False


@dataclass
class Control:
    """One form control: ``input``, ``select``, ``textarea`` or ``button``."""

    tag: str
    type: str
    name: str
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    options: list[Option] = field(default_factory=list)


@dataclass
class Form:
    """A ``<form>``: its attributes and controls, in document order."""

    attrs: dict[str, str]
    controls: list[Control] = field(default_factory=list)

    def submission(self) -> list[tuple[str, str]]:
        """The name/value pairs a browser would send, without any submit button."""
        pairs: list[tuple[str, str]] = []
        for control in self.controls:
            if control.disabled or not control.name:
                continue
            if control.tag == "input":
                if control.type in ("submit", "button", "reset", "image", "file"):
                    continue
                if control.type in ("checkbox", "radio") and not control.checked:
                    continue
                pairs.append((control.name, control.value))
            elif control.tag == "select":
                enabled = [o for o in control.options if not o.disabled]
                chosen = [o for o in enabled if o.selected]
                if not control.multiple:
                    # One value: the last selected option, or the first one when none is.
                    chosen = chosen[-1:] or enabled[:1]
                pairs.extend((control.name, o.value) for o in chosen)
            elif control.tag == "textarea":
                pairs.append((control.name, control.value))
        return pairs

    def values(self, name: str) -> list[str]:
        """What a browser would send for ``name`` (the checked boxes, the selected options)."""
        return [v for n, v in self.submission() if n == name]

    def controls_named(self, name: str) -> list[Control]:
        """Every control called ``name`` (checkboxes share a name)."""
        return [c for c in self.controls if c.name == name]

    def select_options(self, name: str) -> list[Option]:
        """The options of the ``<select>`` called ``name`` (empty when there is none)."""
        for control in self.controls_named(name):
            if control.tag == "select":
                return list(control.options)
        return []


@dataclass(frozen=True)
class Link:
    """An ``<a href>`` and its text."""

    href: str
    text: str


@dataclass
class Page:
    """What the set-up needs from one RT page."""

    title: str = ""
    forms: list[Form] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # RT's "Results" box
    errors: list[str] = field(default_factory=list)  # text of <div class="error">

    def form(self, key: str) -> Form | None:
        """The form whose ``id`` or ``name`` is ``key``."""
        for form in self.forms:
            if key in (form.attrs.get("id"), form.attrs.get("name")):
                return form
        return None

    def feedback(self) -> str:
        """RT's own words on this page (results, errors or the title), for error messages."""
        said = self.messages or self.errors or ([self.title] if self.title else [])
        text = "; ".join(dict.fromkeys(s for s in said if s))
        return text[:300] + ("…" if len(text) > 300 else "")


def _squash(text: str) -> str:
    return " ".join(text.split())


class _PageParser(HTMLParser):
    """Collects forms, links, RT's result messages and error boxes from one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: Form | None = None
        self._select: Control | None = None
        self._option: Option | None = None
        self._option_text: list[str] = []
        self._option_has_value = False
        self._textarea: Control | None = None
        self._textarea_text: list[str] = []
        self._link: tuple[str, list[str]] | None = None
        self._title: list[str] | None = None
        self._in_results = 0
        self._item: list[str] | None = None
        self._divs: list[bool] = []  # whether each open <div> is an error box
        self._error: list[str] = []

    # -- tags -------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "form":
            self._form = Form(attrs=a)
            self.page.forms.append(self._form)
        elif tag == "input":
            kind = a.get("type", "text").lower()
            default = "on" if kind in ("checkbox", "radio") else ""
            self._add(
                Control(
                    "input",
                    kind,
                    a.get("name", ""),
                    a.get("value", default),
                    checked="checked" in a,
                    disabled="disabled" in a,
                )
            )
        elif tag == "button":
            self._add(
                Control(
                    "button",
                    a.get("type", "submit").lower(),
                    a.get("name", ""),
                    a.get("value", ""),
                    disabled="disabled" in a,
                )
            )
        elif tag == "select":
            multiple = "multiple" in a
            self._select = Control(
                "select",
                "select-multiple" if multiple else "select-one",
                a.get("name", ""),
                disabled="disabled" in a,
                multiple=multiple,
            )
            self._add(self._select)
        elif tag == "option":
            self._end_option()
            if self._select is not None:
                self._option = Option(a.get("value", ""), "", "selected" in a, "disabled" in a)
                self._option_has_value = "value" in a
                self._option_text = []
        elif tag == "textarea":
            self._textarea = Control(
                "textarea", "textarea", a.get("name", ""), disabled="disabled" in a
            )
            self._textarea_text = []
            self._add(self._textarea)
        elif tag == "a" and "href" in a:
            self._link = (a["href"], [])
        elif tag == "title":
            self._title = []
        elif tag == "ul" and "action-results" in classes:
            self._in_results += 1
        elif tag == "li" and self._in_results:
            self._item = []
        elif tag == "div":
            self._end_error()
            self._divs.append("error" in classes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "option":
            self._end_option()
        elif tag == "select":
            self._end_option()
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._textarea_text)
            # As in a browser: a newline right after <textarea> is not part of the value.
            self._textarea.value = text[1:] if text.startswith("\n") else text
            self._textarea = None
        elif tag == "a" and self._link is not None:
            self.page.links.append(Link(self._link[0], _squash("".join(self._link[1]))))
            self._link = None
        elif tag == "title" and self._title is not None:
            self.page.title = _squash("".join(self._title))
            self._title = None
        elif tag == "ul" and self._in_results:
            self._in_results -= 1
        elif tag == "li" and self._item is not None:
            self.page.messages.append(_squash("".join(self._item)))
            self._item = None
        elif tag == "div":
            self._end_error()
            if self._divs:
                self._divs.pop()

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea_text.append(data)
            return
        if self._option is not None:
            self._option_text.append(data)
        if self._link is not None:
            self._link[1].append(data)
        if self._title is not None:
            self._title.append(data)
        if self._item is not None:
            self._item.append(data)
        if self._divs and self._divs[-1]:
            self._error.append(data)

    # -- helpers ----------------------------------------------------------------------
    def _add(self, control: Control) -> None:
        if self._form is not None:
            self._form.controls.append(control)

    def _end_option(self) -> None:
        if self._option is None or self._select is None:
            self._option = None
            return
        self._option.label = _squash("".join(self._option_text))
        if not self._option_has_value:
            self._option.value = self._option.label
        self._select.options.append(self._option)
        self._option = None

    def _end_error(self) -> None:
        text = _squash("".join(self._error))
        if text:
            self.page.errors.append(text)
        self._error = []


def parse_page(html: str) -> Page:
    """Read the forms, links, result messages and error boxes of an RT page."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.page


def same_code(a: str, b: str) -> bool:
    """Whether two pieces of scrip code are the same, ignoring line ends and outer blank space."""
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def form_data(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data
