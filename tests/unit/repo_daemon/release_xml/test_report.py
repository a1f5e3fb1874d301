"""How problems are told: all kept on the error, the first hundred in its message, checking
stopped after a thousand; ReleaseInvalid is a permanent DaemonError."""

from __future__ import annotations

import pytest

from repo_daemon import errors
from repo_daemon.release_xml import parse, report
from tests.support.release_xml_samples import valid_with


def test_long_lists_of_problems_are_cut_in_the_message_but_kept() -> None:
    package = "<Package><Name>x</Name><Version>1</Version><Path>p{}</Path><Size>x</Size>"
    package += "<SHA256>" + "0" * 64 + "</SHA256></Package>"
    many = "".join(package.format(i) for i in range(150))
    data = valid_with(("<Packages>", "<Packages>" + many))
    with pytest.raises(report.ReleaseInvalid) as caught:
        parse.parse_release(data)
    assert len(caught.value.problems) == 150
    message = str(caught.value)
    assert message.count("\n  - ") == report.MAX_LISTED_PROBLEMS
    assert message.endswith("\n  … and 50 more problems")


def test_checking_stops_after_many_problems() -> None:
    data = valid_with(("<Release>", "<Release>" + "<a/>" * 1500))
    with pytest.raises(report.ReleaseInvalid) as caught:
        parse.parse_release(data)
    assert len(caught.value.problems) == report.MAX_PROBLEMS
    assert caught.value.stopped
    assert str(caught.value).endswith(
        "\n  … and 900 more problems\n  … checking stopped after 1000; there may be more"
    )


def test_release_invalid_is_a_permanent_daemon_error() -> None:
    error = report.ReleaseInvalid(["a", "b"], source="x.xml")
    assert isinstance(error, errors.DaemonError)
    assert error.transient is False
    assert error.source == "x.xml"
    assert str(error) == "release.xml is invalid:\n  - a\n  - b"
