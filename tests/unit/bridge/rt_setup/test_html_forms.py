"""Reading RT's pages as a browser would: what each form sends, options, textareas, links,
RT's result messages and error boxes.

The snippets have the shape RT 5.0.3's Mason pages render (Admin/Elements/EditRights,
Admin/Queues/DefaultValues.html, Admin/Scrips/Modify.html, Elements/ListActions).
"""

from __future__ import annotations

from bridge.rt_setup.html_forms import parse_page, same_code

RIGHTS_PAGE = """
<html><head><title>Modify group rights for queue sw-rel</title></head><body>
<form action="/Search/Simple.html" id="simple-search"><input name="q" value="" /></form>
<form method="post" action="GroupRights.html" id="ModifyGroupRights" name="ModifyGroupRights">
  <input type="hidden" class="hidden" name="id" value="3" />
  <input type="hidden" value="" name="Anchor" />
  <input type="checkbox" class="custom-control-input" name="SetRights-31-RT::Queue-3"
         id="SetRights-31-RT::Queue-3-SeeQueue" value="SeeQueue"
         checked />
  <input type="checkbox" class="custom-control-input" name="SetRights-31-RT::Queue-3"
         id="SetRights-31-RT::Queue-3-ShowTicket" value="ShowTicket"
          />
  <input type="checkbox" name="SetRights-addprincipal-RT::Queue-3" value="Watch" />
  <input type="hidden" name="CheckACL" value="31-RT::Queue-3" />
  <input type="submit" name="SubmitTicket" value="Save Changes" />
</form>
</body></html>
"""


DEFAULTS_PAGE = """
<form method="post" action="DefaultValues.html" name="ModifyDefaultValues" id="ModifyDefaultValues">
<input type="hidden" name="id" value="3" />
<select class="select-priority" name="InitialPriority">
  <option value="">-</option>
  <option value="0" >Low</option>
  <option value="50" selected="selected">Medium</option>
</select>
<input type="text" id="Starts" name="Starts" value="" size="16" />
<input type="hidden" class="hidden"
       name="Object-RT::Ticket--CustomField-2-Values-Magic" value="1" />
<select
  name="Object-RT::Ticket--CustomField-2-Values" id="Object-RT::Ticket--CustomField-2-Values"
 >
<option value="" selected="selected">(no value)</option>
        <option value="Submitted"
        >Submitted</option>
        <option value="Unverified"
        >Unverified</option>
</select>
<select name="Object-RT::Ticket--CustomField-3-Values"><option>No</option><option>Yes</option>
</select>
<select name="Tags" multiple><option value="a">A</option><option value="b">B</option></select>
<input type="text" name="Object-RT::Ticket--CustomField-5-Value" value="UMD-5" disabled />
<textarea cols="15" rows="5" name="Object-RT::Ticket--CustomField-11-Values"></textarea>
<input type="submit" name="Update" value="Save Changes" />
</form>
"""


SCRIP_PAGE = """
<title>Modify scrip #18</title>
<div class="results"><div class="error"><div class="card-body">
  <ul class="action-results">
    <li>Scrip 18 updated</li>
    <li>Description changed from
        &#34;a&#34; to &#34;b&#34;</li>
  </ul>
</div></div></div>
<form method="post" action="Modify.html" id="ModifyScrip" name="ModifyScrip">
<input type="hidden" class="hidden" name="id" value="18" />
<input type="text" class="form-control" name="Description" size="60" value="Rollout &amp; more" />
<select name="ScripCondition" class="form-control selectpicker">
<option value=""
>-</option>
<option value="1"
>On Create
</option>
<option value="13"
 selected="selected"
>User Defined
</option>
</select>
<select name="Template" class="form-control selectpicker">
<option value="">Blank</option>
<option value="Autoreply" >Autoreply</option>
</select>
<input type="checkbox" class="checkbox custom-control-input" name="Enabled" id="Enabled"
       value="1" checked="checked" />
<textarea cols="80" class="form-control" rows="10" name="CustomCommitCode">
my $x = $a &lt; 2 &amp;&amp; $b;
return 1;</textarea>
</form>
<a href="/Admin/Scrips/Modify.html?id=18&amp;From=3">Rollout bridge: tell</a>
"""


ERROR_PAGE = """
<title>RT Error</title>
<div id="body"><div class="error">
Couldn't load queue 99
<br />
</div></div>
"""


def test_rights_checkboxes_read_as_a_browser_would_send_them() -> None:
    page = parse_page(RIGHTS_PAGE)
    form = page.form("ModifyGroupRights")
    assert form is not None
    assert form.values("SetRights-31-RT::Queue-3") == ["SeeQueue"]
    assert [c.value for c in form.controls_named("SetRights-31-RT::Queue-3")] == [
        "SeeQueue",
        "ShowTicket",
    ]
    sent = form.submission()
    assert ("id", "3") in sent and ("CheckACL", "31-RT::Queue-3") in sent
    assert all(name != "SubmitTicket" for name, _ in sent)  # buttons are not sent
    assert page.form("simple-search") is not None and page.form("missing") is None
    assert page.title == "Modify group rights for queue sw-rel"


def test_selects_send_the_selected_or_the_first_option() -> None:
    form = parse_page(DEFAULTS_PAGE).form("ModifyDefaultValues")
    assert form is not None
    assert form.values("InitialPriority") == ["50"]
    # Nothing selected in a single select: the first option, as in a browser.
    assert form.values("Object-RT::Ticket--CustomField-2-Values") == [""]
    # An option without a value attribute sends its text.
    assert form.values("Object-RT::Ticket--CustomField-3-Values") == ["No"]
    assert [o.value for o in form.select_options("Object-RT::Ticket--CustomField-2-Values")] == [
        "",
        "Submitted",
        "Unverified",
    ]
    assert form.values("Tags") == []  # a multiple select with nothing selected sends nothing
    assert form.values("Object-RT::Ticket--CustomField-5-Value") == []  # disabled
    assert form.values("Object-RT::Ticket--CustomField-11-Values") == [""]
    assert form.values("Starts") == [""]


def test_textareas_links_and_results_are_unescaped() -> None:
    page = parse_page(SCRIP_PAGE)
    form = page.form("ModifyScrip")
    assert form is not None
    # The newline right after <textarea> is not part of the value; entities are decoded.
    assert form.values("CustomCommitCode") == ["my $x = $a < 2 && $b;\nreturn 1;"]
    assert form.values("Description") == ["Rollout & more"]
    assert form.values("ScripCondition") == ["13"]
    labels = {o.value: o.label for o in form.select_options("ScripCondition")}
    assert labels == {"": "-", "1": "On Create", "13": "User Defined"}
    template = form.select_options("Template")
    assert (template[0].value, template[0].label) == ("", "Blank")
    assert form.values("Enabled") == ["1"]
    assert page.messages == ["Scrip 18 updated", 'Description changed from "a" to "b"']
    assert page.feedback() == 'Scrip 18 updated; Description changed from "a" to "b"'
    assert [(link.href, link.text) for link in page.links] == [
        ("/Admin/Scrips/Modify.html?id=18&From=3", "Rollout bridge: tell")
    ]


def test_error_pages_say_why() -> None:
    page = parse_page(ERROR_PAGE)
    assert page.forms == []
    assert page.errors == ["Couldn't load queue 99"]
    assert page.feedback() == "Couldn't load queue 99"
    assert parse_page("<title>Only a title</title>").feedback() == "Only a title"


def test_same_code_ignores_line_ends_and_outer_space() -> None:
    assert same_code("return 1;\n", "return 1;")
    assert same_code("a;\r\nb;\r\n", "a;\nb;\n")
    assert not same_code("return 1;", "return 0;")
