"""The handlers of the actions that only tell people: what the ticket says, who is Cc, whether
it is resolved. Pure: each takes the gathered ``Inputs`` and returns effects; nothing is
written here (the processor applies the effects once).

Who gets mail follows RT's scrips: a comment mails AdminCc (and Cc, with the product's "On
Comment Notify Ccs as Comment" scrip), a reply also mails the requestors — so only messages
meant for the technology provider are replies.
"""

from __future__ import annotations

import re

from repo_daemon import errors
from repo_daemon.workflow import effects
from repo_daemon.workflow.gather import CLOSING_REASON, Inputs

# Fields the repository work needs on the ticket (ReleaseType has a default: NonIncremental).
MANDATORY_FIELDS = ("Sync-URL", "Sync-Protocol", "AssociatedMajorRelease")


def check_fields(inputs: Inputs) -> effects.Result:
    """Refuse (permanently) a ticket that lacks what the repository work needs, naming every
    empty mandatory field, and every line of the provider's mail that was refused
    (docs/mail-intake.md)."""
    filled = inputs.ticket.filled
    missing = [name for name in MANDATORY_FIELDS if not inputs.ticket.field(name)]
    problems = list(filled.problems)
    if missing:
        problems.insert(
            0,
            f"the ticket lacks {', '.join(missing)}; fill {'it' if len(missing) == 1 else 'them'}"
            " in on the ticket, or answer with one line per field in your message's text, "
            "such as 'Sync-URL: rsync://host/module/path/'",
        )
    if problems:
        also = [f"also, {note}" for note in filled.notes] if missing else []
        raise errors.TicketIncomplete("; ".join(problems + also), ticket_id=inputs.ticket.id)
    return effects.Result(detail="mandatory fields present")


def check_major_release(inputs: Inputs) -> effects.Result:
    """Refuse (permanently, for the provider to fix) a major release the settings do not
    know, naming the known ones; any name passes when the settings list none."""
    major = inputs.ticket.major_release
    known = inputs.known_major_releases
    if known and major not in known:
        raise errors.TicketIncomplete(
            f"AssociatedMajorRelease {major!r} is not a known major release; known: "
            f"{', '.join(known)}",
            ticket_id=inputs.ticket.id,
        )
    return effects.Result(detail=f"major release {major}" if known else "any major release")


def notify_watchers(inputs: Inputs) -> effects.Result:
    """Set the Cc groups (and the owner, where one is named) of the state entered and tell
    them what happened (the headline). Early-adopter teams that accepted the release stay
    Cc in every state."""
    state = inputs.going_to
    if inputs.failure:
        text = f"RolloutProgress: {inputs.came_from.label} → {state.label}. {inputs.failure}."
    else:
        how = " (automatically)" if inputs.automatic else ""
        news = inputs.definition.info(state).news
        text = f"RolloutProgress: {inputs.came_from.label} → {state.label}{how}. {news}"
    watchers = effects.SetWatchers(cc=inputs.cc(state), admin_cc=inputs.people.admin_cc)
    owner = inputs.people.owner(inputs.definition, state)
    owned = (effects.SetOwner(owner=owner),) if owner else ()
    return effects.Result(
        detail=f"watchers set, owner {owner}" if owner else "watchers set",
        effects=(watchers, *owned, effects.Comment(text=text.strip(), headline=True)),
    )


def comment_deferred(inputs: Inputs) -> effects.Result:
    """Say which release holds the staged-rollout slot, and what happens next."""
    holders = ", ".join(f"#{t}" for t in inputs.facts.slot_holders) or "another release"
    text = (
        f"Deferred: the {inputs.ticket.major_release} staged-rollout slot is held by {holders}. "
        "This release moves into StageRollout by itself, oldest first, when the slot frees."
    )
    return effects.Result(detail="deferral explained", effects=(effects.Comment(text=text),))


def comment_outcome(inputs: Inputs) -> effects.Result:
    """Say what the outcome is, for the release managers."""
    state = inputs.going_to
    text = f"{state.label}: {inputs.definition.info(state).news}"
    return effects.Result(detail="outcome commented", effects=(effects.Comment(text=text),))


def reply_provider(inputs: Inputs) -> effects.Result:
    """Tell the technology provider (the requestors) the outcome: the state's ``reply``, where
    ``{subject}`` is the ticket's subject and ``{reason}`` what the release manager wrote in
    the Closing Reason field (or that they wrote nothing)."""
    state = inputs.going_to
    info = inputs.definition.info(state)
    reply = info.reply or (
        f"Your release {{subject}} is {state.label}. {info.news} Answer on this ticket if you "
        "have questions."
    )
    reason = inputs.ticket.closing_reason or (
        f"none was written in the ticket's {CLOSING_REASON} field; ask on this ticket"
    )
    # One pass of plain replacement, not str.format: a subject and a reason are people's text.
    values = {"subject": repr(inputs.ticket.subject), "reason": reason}
    text = re.sub(r"\{(subject|reason)\}", lambda m: values[m[1]], reply)
    return effects.Result(detail="provider told", effects=(effects.Reply(text=text),))


def comment_failure(inputs: Inputs) -> effects.Result:
    """Say what failed and what a person can do about it."""
    text = f"Processing failed: {inputs.failure}."
    return effects.Result(detail="failure explained", effects=(effects.Comment(text=text),))


def reply_failure(inputs: Inputs) -> effects.Result:
    """Tell the technology provider what failed when it is theirs to fix (their release.xml,
    Sync-URL, server, files or ticket fields): a reply, since they do not see comments."""
    if not inputs.failure_for_provider:
        return effects.Result(detail="nothing for the provider to fix")
    text = (
        f"Your release {inputs.ticket.subject!r} could not be processed: {inputs.failure}.\n\n"
        "Please correct it (release.xml, Sync-URL, the files on your server or the ticket's "
        "fields) and answer on this ticket; a release manager then retries it."
    )
    return effects.Result(detail="provider told what to fix", effects=(effects.Reply(text=text),))


def resolve_ticket(inputs: Inputs) -> effects.Result:
    """Resolve the ticket (with the last reply, if there is one, so RT does not reopen it)."""
    return effects.Result(detail="resolved", effects=(effects.Resolve(),))
