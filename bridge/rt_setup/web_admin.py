"""RT's web admin pages, for the set-up that REST2 in RT 5.0 cannot do: rights (``web_rights``),
queue default values of custom fields, and the scrips.

Owns one idempotent ``ensure_*`` operation per item: read the admin page, change only what is
missing or different, then load the page again and check that RT took the change. Form field
names are those of RT 5.0's Mason pages:
``Admin/Queues/DefaultValues.html`` (``Object-RT::Ticket--CustomField-<id>-Value(s)``),
``Admin/Scrips/Create.html``, ``Modify.html`` and ``Objects.html``.
The session it runs on (login, cookie, Referer, RT's errors) is ``web_session``'s, the reading
of the pages' HTML ``html_forms``'s; it never sends a request but through the session.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from bridge import errors
from bridge.rt_setup import web_rights, web_session
from bridge.rt_setup.html_forms import Form, form_data, parse_page, same_code

logger = logging.getLogger(__name__)

USER_DEFINED = "User Defined"  # the name of RT's scrip condition and action that run code
# Columns of the queue's scrip list: a link to each scrip named by its description. Passed
# explicitly so that a site's own $AdminSearchResultFormat does not matter.
_SCRIP_LIST_FORMAT = (
    "'<a href=\"__WebPath__/Admin/Scrips/Modify.html?id=__id__\">__id__</a>/TITLE:#',"
    '\'<a href="__WebPath__/Admin/Scrips/Modify.html?id=__id__">__Description__</a>'
    "/TITLE:Description'"
)
_SCRIP_LINK = re.compile(r"/Admin/Scrips/Modify\.html\?id=(\d+)")
_CF_INPUT = re.compile(r"^Object-RT::(?:Ticket|Transaction)--CustomField(?::\w+)?-(\d+)-(.+)$")


class WebAdmin(web_rights.RightsPages):
    """A logged-in session on RT's web admin pages, with idempotent set-up operations."""

    # -- default values ---------------------------------------------------------------
    def ensure_default_value(self, *, queue_id: int, custom_field_id: int, value: str) -> bool:
        """Make ``value`` the queue's default for a ticket custom field; True when changed.

        Sends the page's other fields (priorities, dates, article) as they are, like a browser
        would, and no other custom field.
        """
        path, params = "Admin/Queues/DefaultValues.html", {"id": str(queue_id)}
        what = f"set the default of custom field #{custom_field_id} in queue #{queue_id}"
        form = self._form("GET", path, "ModifyDefaultValues", what, params=params)
        name = self._cf_input(form, custom_field_id, what)
        if form.values(name) == [value]:
            return False
        options = form.select_options(name)
        if options and value not in {o.value for o in options}:
            raise errors.TrackerRejected(
                f"{value!r} is not one of the values of custom field #{custom_field_id}",
                operation=what,
            )
        pairs = [(n, v) for n, v in form.submission() if not _CF_INPUT.match(n)]
        magic = f"{name}-Magic"
        if form.controls_named(magic):
            pairs.append((magic, "1"))
        pairs += [(name, value), ("Update", _submit_value(form, "Update"))]
        answer = self._page("POST", path, what, data=form_data(pairs))
        now = self._form("GET", path, "ModifyDefaultValues", what, params=params).values(name)
        if now != [value]:
            raise errors.TrackerRejected(
                f"RT did not take {value!r} as the default of custom field #{custom_field_id} "
                f"in queue #{queue_id} (it shows {', '.join(now) or 'no value'})"
                + web_session.rt_said(answer),
                operation=what,
            )
        logger.info(
            "default of custom field #%s in queue #%s: %s", custom_field_id, queue_id, value
        )
        return True

    @staticmethod
    def _cf_input(form: Form, custom_field_id: int, what: str) -> str:
        for control in form.controls:
            m = _CF_INPUT.match(control.name)
            if m and int(m.group(1)) == custom_field_id and m.group(2) in ("Value", "Values"):
                return control.name
        raise errors.TrackerRejected(
            f"custom field #{custom_field_id} is not on the queue's default values page "
            "(not applied to the queue, or of a type without defaults)",
            operation=what,
        )

    # -- scrip ------------------------------------------------------------------------
    def ensure_scrip(
        self,
        *,
        queue_id: int,
        description: str,
        condition_code: str | None = None,
        action_code: str | None = None,
        prepare_code: str = "return 1;",
        template: str = "Blank",
        stage: str = "TransactionCreate",
        condition: str = USER_DEFINED,
        action: str = USER_DEFINED,
        former_descriptions: Sequence[str] = (),
    ) -> str:
        """Create the scrip on the queue, or bring an existing one up to date.

        A scrip with code uses RT's User Defined condition and action; one without names a
        condition and action RT ships (e.g. "On Comment", "Notify Ccs as Comment"). The scrip
        is found by its description, or else by one it had before (``former_descriptions``),
        which is then renamed. Returns ``"created"``, ``"unchanged"`` or ``"updated (...)"``
        naming what was changed (description, code, condition, action, template, enabled,
        applied to queue).
        """
        code: dict[str, str] = {}
        if condition_code is not None or action_code is not None:
            code = {
                "CustomIsApplicableCode": condition_code or "",
                "CustomPrepareCode": prepare_code,
                "CustomCommitCode": action_code or "",
            }
        names = (condition, action)
        scrip_id = self._find_scrip(queue_id, description)
        for former in former_descriptions:
            if scrip_id is None:
                scrip_id = self._find_scrip(queue_id, former)
        if scrip_id is None:
            scrip_id = self._create_scrip(queue_id, description, code, template, stage, names)
            self._check_scrip(scrip_id, description, code, template, names)
            if not self._scrip_applied(scrip_id, queue_id):
                raise errors.TrackerRejected(
                    f"RT created scrip #{scrip_id} but did not apply it to queue #{queue_id}",
                    operation="create scrip",
                )
            logger.info("created scrip #%s on queue #%s", scrip_id, queue_id)
            return "created"
        changed = self._update_scrip(scrip_id, description, code, template, names)
        if not self._scrip_applied(scrip_id, queue_id):
            self._apply_scrip(scrip_id, queue_id, stage)
            changed.append("applied to queue")
        if not changed:
            return "unchanged"
        logger.info("updated scrip #%s: %s", scrip_id, ", ".join(changed))
        return f"updated ({', '.join(changed)})"

    def _find_scrip(self, queue_id: int, description: str) -> int | None:
        """The id of the scrip with this description, applied to the queue or not."""
        page = self._page(
            "GET", "Admin/Queues/Scrips.html", "find the scrip",
            params={"id": str(queue_id), "Rows": "0", "Format": _SCRIP_LIST_FORMAT},
        )  # fmt: skip
        found = sorted(
            {
                int(m.group(1))
                for link in page.links
                if link.text == description and (m := _SCRIP_LINK.search(link.href))
            }
        )
        if len(found) > 1:
            logger.warning(
                "several scrips are described %r (%s); keeping #%s up to date",
                description, ", ".join(f"#{i}" for i in found), found[0],
            )  # fmt: skip
        return found[0] if found else None

    def _create_scrip(
        self,
        queue_id: int,
        description: str,
        code: Mapping[str, str],
        template: str,
        stage: str,
        names: tuple[str, str],
    ) -> int:
        what = "create scrip"
        path = "Admin/Scrips/Create.html"
        form = self._form("GET", path, "CreateScrip", what, params={"Queue": str(queue_id)})
        condition, action = self._option_ids(form, what, names)
        if template not in {o.value for o in form.select_options("Template")}:
            raise errors.TrackerRejected(f"RT has no template named {template!r}", operation=what)
        overrides: dict[str, list[str]] = {
            "Queue": [str(queue_id)],
            "Description": [description],
            "ScripCondition": [condition],
            "ScripAction": [action],
            "Template": [template],
            "Stage": [stage],
            "SetEnabled": ["1"],
            "Enabled": ["1"],
            **{k: [v] for k, v in code.items()},
            "Create": [_submit_value(form, "Create")],
        }
        data = {**form_data(form.submission()), **overrides}
        answer = self._send("POST", path, what, data=data)
        # Success redirects to Modify.html?id=<new scrip>; failure shows the form again.
        if answer.url.path.endswith("/Admin/Scrips/Modify.html"):
            new_id = answer.url.params.get("id", "")
            if new_id.isdigit():
                return int(new_id)
        raise errors.TrackerRejected(
            f"RT did not create the scrip {description!r}"
            + web_session.rt_said(parse_page(answer.text)),
            operation=what,
        )

    def _update_scrip(
        self,
        scrip_id: int,
        description: str,
        code: Mapping[str, str],
        template: str,
        names: tuple[str, str],
    ) -> list[str]:
        """Bring the scrip's description, condition, action, template, code and state up to
        date."""
        what = f"update scrip #{scrip_id}"
        path, params = "Admin/Scrips/Modify.html", {"id": str(scrip_id)}
        form = self._form("GET", path, "ModifyScrip", what, params=params)
        condition, action = self._option_ids(form, what, names)
        differ = self._scrip_differences(form, code, template, condition, action, description)
        if not differ:
            return []
        pairs = [(n, v) for n, v in form.submission() if n not in (*code, "Enabled")]
        overrides = {
            "Description": [description],
            "ScripCondition": [condition],
            "ScripAction": [action],
            "Template": [template if "template" in differ else ""],
            "SetEnabled": ["1"],
            "Enabled": ["1"],
            **{k: [v] for k, v in code.items()},
            "Update": [_submit_value(form, "Update")],
        }
        answer = self._page("POST", path, what, data={**form_data(pairs), **overrides})
        form = self._form("GET", path, "ModifyScrip", what, params=params)
        still = self._scrip_differences(form, code, template, condition, action, description)
        if still:
            raise errors.TrackerRejected(
                f"RT did not update the {', '.join(still)} of scrip #{scrip_id}"
                + web_session.rt_said(answer),
                operation=what,
            )
        return differ

    def _check_scrip(
        self,
        scrip_id: int,
        description: str,
        code: Mapping[str, str],
        template: str,
        names: tuple[str, str],
    ) -> None:
        what = f"check scrip #{scrip_id}"
        form = self._form(
            "GET", "Admin/Scrips/Modify.html", "ModifyScrip", what, params={"id": str(scrip_id)}
        )
        condition, action = self._option_ids(form, what, names)
        differ = self._scrip_differences(form, code, template, condition, action, description)
        if differ:
            raise errors.TrackerRejected(
                f"scrip #{scrip_id} as RT saved it differs in: {', '.join(differ)}", operation=what
            )

    @staticmethod
    def _scrip_differences(
        form: Form,
        code: Mapping[str, str],
        template: str,
        condition: str,
        action: str,
        description: str,
    ) -> list[str]:
        differ = []
        if form.values("Description") != [description]:
            differ.append("description")
        if any(not same_code("".join(form.values(k)), v) for k, v in code.items()):
            differ.append("code")
        if form.values("ScripCondition") != [condition]:
            differ.append("condition")
        if form.values("ScripAction") != [action]:
            differ.append("action")
        # On Modify.html the first option (value "") names the scrip's current template.
        options = form.select_options("Template")
        current = next((o.label for o in options if o.value == ""), "")
        if current != template:
            differ.append("template")
        if not any(c.checked for c in form.controls_named("Enabled")):
            differ.append("enabled")
        return differ

    @staticmethod
    def _option_ids(form: Form, what: str, names: tuple[str, str]) -> tuple[str, str]:
        """The ids of the named condition and action offered by a scrip form."""
        found = []
        for field_name, label in zip(("ScripCondition", "ScripAction"), names, strict=True):
            ids = [o.value for o in form.select_options(field_name) if o.label == label]
            if not ids:
                hint = (
                    "the account needs the ExecuteCode right (and RT's pages in English)"
                    if label == USER_DEFINED
                    else "RT's pages must be in English"
                )
                raise errors.TrackerRejected(
                    f"RT offers no {label!r} {field_name[5:].lower()} on its scrip page; {hint}",
                    operation=what,
                )
            found.append(ids[0])
        return found[0], found[1]

    def _scrip_applied(self, scrip_id: int, queue_id: int) -> bool:
        """Whether the scrip runs for the queue (added to it, or global)."""
        form = self._form(
            "GET", "Admin/Scrips/Objects.html", "AddRemoveScrip", f"read scrip #{scrip_id}",
            params={"id": str(scrip_id)},
        )  # fmt: skip
        # Checkboxes named RemoveScrip-<scrip> list what it is added to (value 0: global).
        added = {c.value for c in form.controls_named(f"RemoveScrip-{scrip_id}")}
        return bool(added & {"0", str(queue_id)})

    def _apply_scrip(self, scrip_id: int, queue_id: int, stage: str) -> None:
        what = f"apply scrip #{scrip_id} to queue #{queue_id}"
        answer = self._page(
            "POST", "Admin/Scrips/Objects.html", what,
            data={"id": str(scrip_id), "From": "", f"AddScrip-{scrip_id}": str(queue_id),
                  "Stage": stage, "Template": "", "Update": "1"},
        )  # fmt: skip
        if not self._scrip_applied(scrip_id, queue_id):
            raise errors.TrackerRejected(
                f"RT did not apply scrip #{scrip_id} to queue #{queue_id}"
                + web_session.rt_said(answer),
                operation=what,
            )


def _submit_value(form: Form, name: str) -> str:
    """The value of the submit button called ``name`` (what a click on it sends)."""
    for control in form.controls_named(name):
        if control.type == "submit":
            return control.value or "1"
    return "1"
