"""A release history loaded into a real RT 5, with RT's own times and actors: the backfill's
real input.

REST2 cannot backdate a change and costs ~0.3 s a call, so one Perl process (``use RT -init``
on the sandbox's own configuration) creates the tickets and makes their custom-field changes
through RT's API, then sets each ticket's and each transaction's ``Created`` and ``Creator`` to
the history's time and actor directly in RT's SQLite database (RT stores UTC
``YYYY-MM-DD HH:MM:SS``). Tickets get the history's ids (a ticket RT numbered otherwise is
renumbered, with its transactions, values and role groups). With ``quiet`` (the default) every
scrip of the RT is disabled first, so loading posts no hook and sends no mail: for a throw-away
RT only.

``tickets_of(stories)`` turns ``tests.support.metrics_seed`` stories into ``SeedTicket``s;
``load(info, tickets, teams=...)`` loads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bridge.rt_setup.sandbox import RT_LIB, SandboxInfo
from tests.support import metrics_seed

PROGRESS, ADOPTERS, REPORT = "RolloutProgress", "EarlyAdopters", "StageRollout Report"
MAJOR, EMERGENCY = "AssociatedMajorRelease", "EmergencyRelease"


@dataclass(frozen=True, kw_only=True)
class Change:
    """One custom-field change: ``value`` added (for a single-value field: set) or, with
    ``remove``, removed, at ``at`` by ``actor``."""

    at: datetime
    field: str
    value: str
    actor: str
    remove: bool = False
    # A value RT would refuse (not among a select field's values): RT is given ``stand_in``,
    # then the change and the field's value are rewritten to ``value`` in RT's database, as an
    # edited or imported history would have it.
    stand_in: str | None = None


@dataclass(frozen=True, kw_only=True)
class SeedTicket:
    """A ticket to create at ``created_at`` by ``creator`` with ``fields`` (recorded by RT
    without a change of their own), then ``changes`` in time order."""

    ticket_id: int
    created_at: datetime
    creator: str
    fields: dict[str, str] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """What loading did: tickets created, changes made, seconds taken."""

    tickets: int
    changes: int
    seconds: float


def report_url(ticket_id: int) -> str:
    return f"https://reports.example.org/stage-rollout/{ticket_id}"


def ticket_of(story: metrics_seed.Story) -> SeedTicket:
    """The RT ticket and changes of one seeded story."""
    changes = [Change(at=m.at, field=PROGRESS, value=m.state, actor=m.actor) for m in story.moves]
    for a in story.acceptances:
        changes.append(Change(at=a.at, field=ADOPTERS, value=a.team, actor=a.actor))
        if a.withdrawn_at is not None:
            changes.append(
                Change(at=a.withdrawn_at, field=ADOPTERS, value=a.team, actor=a.actor, remove=True)
            )
    if story.report_at is not None:
        changes.append(
            Change(
                at=story.report_at,
                field=REPORT,
                value=report_url(story.ticket_id),
                actor=metrics_seed.SR,
            )
        )
    ordered = sorted(enumerate(changes), key=lambda pair: (pair[1].at, pair[0]))
    return SeedTicket(
        ticket_id=story.ticket_id,
        created_at=story.created_at,
        creator=metrics_seed.PROVIDER,
        fields={MAJOR: story.major_release, EMERGENCY: "Yes" if story.emergency else "No"},
        changes=tuple(c for _, c in ordered),
    )


def tickets_of(stories: Iterable[metrics_seed.Story]) -> list[SeedTicket]:
    return [ticket_of(s) for s in stories]


def _rt_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


_LOADER_PERL = r"""
use strict;
use warnings;
use RT -init;
use JSON;

my $plan = decode_json( do { local $/; <STDIN> } );
my $dbh  = $RT::Handle->dbh;
my $sys  = RT->SystemUser;

my $queue = RT::Queue->new($sys);
$queue->Load( $plan->{queue} );
die "no queue $plan->{queue}\n" unless $queue->id;

if ( $plan->{quiet} ) {
    my $scrips = RT::Scrips->new($sys);
    $scrips->UnLimit;
    while ( my $scrip = $scrips->Next ) {
        next if $scrip->Disabled;
        my ( $ok, $msg ) = $scrip->SetDisabled(1);
        die "cannot disable scrip " . $scrip->id . ": $msg\n" unless $ok;
    }
}

my %uid;
for my $name ( @{ $plan->{users} } ) {
    my $user = RT::User->new($sys);
    $user->Load($name);
    unless ( $user->id ) {
        my ( $ok, $msg ) = $user->Create(
            Name => $name, Privileged => 1, EmailAddress => "$name\@example.org" );
        die "cannot create user $name: $msg\n" unless $ok;
    }
    $uid{$name} = $user->id;
}

my %cf;
for my $name ( @{ $plan->{fields} } ) {
    my $cf = RT::CustomField->new($sys);
    $cf->LoadByName( Name => $name, LookupType => RT::Ticket->CustomFieldLookupType,
                     ObjectId => $queue->id );
    die "no custom field $name on $plan->{queue}\n" unless $cf->id;
    $cf{$name} = $cf->id;
}

my $adopters = RT::CustomField->new($sys);
$adopters->Load( $cf{EarlyAdopters} );
my %have;
my $values = $adopters->Values;
while ( my $v = $values->Next ) { $have{ $v->Name } = 1 }
for my $team ( @{ $plan->{teams} } ) {
    next if $have{$team};
    my ( $ok, $msg ) = $adopters->AddValue( Name => $team );
    die "cannot add $team to EarlyAdopters: $msg\n" unless $ok;
}

sub newest_transaction {
    my ($ticket) = @_;
    my ($id) = $dbh->selectrow_array(
        "SELECT max(id) FROM Transactions WHERE ObjectType = 'RT::Ticket' AND ObjectId = ?",
        undef, $ticket );
    return $id;
}

sub renumber {
    my ( $from, $to ) = @_;
    $dbh->do( "UPDATE Tickets SET id = ?, EffectiveId = ? WHERE id = ?", undef, $to, $to, $from );
    for my $table (qw(Transactions ObjectCustomFieldValues Attributes)) {
        $dbh->do( "UPDATE $table SET ObjectId = ? WHERE ObjectType = 'RT::Ticket' AND ObjectId = ?",
                  undef, $to, $from );
    }
    $dbh->do( "UPDATE Groups SET Instance = ? WHERE Domain = 'RT::Ticket-Role' AND Instance = ?",
              undef, $to, $from );
}

my $changes = 0;
for my $t ( @{ $plan->{tickets} } ) {
    my $ticket = RT::Ticket->new($sys);
    my %fields = map { ( "CustomField-" . $cf{$_} => $t->{fields}{$_} ) }
                 keys %{ $t->{fields} };
    my ( $id, $txn, $msg ) = $ticket->Create(
        Queue => $queue->id, Subject => "release $t->{id}",
        Requestor => [ "$t->{creator}\@example.org" ], %fields );
    die "cannot create ticket $t->{id}: $msg\n" unless $id;
    if ( $id != $t->{id} ) {
        die "ticket $t->{id} would go below RT's id $id\n" if $t->{id} < $id;
        renumber( $id, $t->{id} );
    }
    $id = $t->{id};
    $dbh->do( "UPDATE Tickets SET Created = ?, Creator = ?, LastUpdated = ? WHERE id = ?",
              undef, $t->{created}, $uid{ $t->{creator} }, $t->{created}, $id );
    $dbh->do( "UPDATE Transactions SET Created = ?, Creator = ? "
              . "WHERE ObjectType = 'RT::Ticket' AND ObjectId = ?",
              undef, $t->{created}, $uid{ $t->{creator} }, $id );
    $ticket = RT::Ticket->new($sys);
    $ticket->Load($id);
    for my $c ( @{ $t->{changes} } ) {
        my ( $ok, $m );
        my %what = ( Field => $cf{ $c->{field} }, Value => $c->{stand_in} // $c->{value} );
        if ( $c->{remove} ) {
            ( $ok, $m ) = $ticket->DeleteCustomFieldValue(%what);
        } else {
            ( $ok, $m ) = $ticket->AddCustomFieldValue(%what);
        }
        die "ticket $id: $c->{field} " . ( $c->{remove} ? "-" : "+" ) . "$what{Value}: $m\n"
            unless $ok;
        my $made = newest_transaction($id);
        $dbh->do( "UPDATE Transactions SET Created = ?, Creator = ? WHERE id = ?",
                  undef, $c->{at}, $uid{ $c->{actor} }, $made );
        if ( defined $c->{stand_in} ) {
            $dbh->do( "UPDATE Transactions SET NewValue = ? WHERE id = ?",
                      undef, $c->{value}, $made );
            $dbh->do( "UPDATE ObjectCustomFieldValues SET Content = ? "
                      . "WHERE ObjectType = 'RT::Ticket' "
                      . "AND ObjectId = ? AND CustomField = ? AND Disabled = 0",
                      undef, $c->{value}, $id, $cf{ $c->{field} } );
        }
        $changes++;
    }
}
print encode_json( { tickets => scalar @{ $plan->{tickets} }, changes => $changes } );
"""


def load(
    info: SandboxInfo,
    tickets: Sequence[SeedTicket],
    *,
    teams: Sequence[str],
    quiet: bool = True,
    timeout: float = 1800,
) -> Loaded:
    """Create ``tickets`` (ascending ids, above RT's own) with their changes in the sandbox RT
    of ``info``; ``teams`` are made values of EarlyAdopters first. Raises
    ``subprocess.CalledProcessError`` with Perl's message when RT refuses anything."""
    root = Path(info.bridge_token_file).parent
    users = sorted({t.creator for t in tickets} | {c.actor for t in tickets for c in t.changes})
    plan = {
        "queue": info.queue,
        "quiet": quiet,
        "users": users,
        "teams": list(teams),
        "fields": [PROGRESS, ADOPTERS, REPORT, MAJOR, EMERGENCY],
        "tickets": [
            {
                "id": t.ticket_id,
                "created": _rt_time(t.created_at),
                "creator": t.creator,
                "fields": t.fields,
                "changes": [
                    {"at": _rt_time(c.at), "field": c.field, "value": c.value,
                     "actor": c.actor, "remove": c.remove, "stand_in": c.stand_in}
                    for c in t.changes
                ],
            }
            for t in sorted(tickets, key=lambda t: t.ticket_id)
        ],
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {
        "RT_SITE_CONFIG": str(root / "RT_SiteConfig.pm"),
        "RT_SITE_CONFIG_DIR": str(root / "RT_SiteConfig.d"),
        "PERL5LIB": str(RT_LIB),
    }
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["perl", "-e", _LOADER_PERL], input=json.dumps(plan), env=env, cwd=root,
            capture_output=True, text=True, timeout=timeout, check=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"loading the history into RT failed: {exc.stderr[-2000:]}") from exc
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    return Loaded(
        tickets=int(counts["tickets"]),
        changes=int(counts["changes"]),
        seconds=time.monotonic() - started,
    )
