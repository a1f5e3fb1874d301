"""Whether a database's stored tables and its event log agree, for the atomicity tests: what
``rebuild`` derives from the log against the tables, each job's finished steps against their
events and each release's recorded place against its areas (which ``rebuild`` does not
derive), and the hash chain (``chain_check``).

``problems`` lists every disagreement in words (empty when all holds); it reads only.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from bridge.store import chain_check, rebuild, tables


def checkpoints_match_events(engine: sa.Engine) -> list[str]:
    """Every finished step of a job (``job_steps``) has its event (``action_done`` naming the
    action, ``ticket_told`` the write-back step) and every such event its step; a frozen
    release.xml has its ``release_xml_frozen`` and the reverse."""
    log, done, rel = tables.event_log, tables.job_steps, tables.releases
    with engine.connect() as conn:
        steps = {(int(j), str(a)) for j, a in conn.execute(sa.select(done.c.job_id, done.c.action))}
        told: set[tuple[int, str]] = set()
        rows = conn.execute(
            sa.select(log.c.job_id, log.c.kind, log.c.data).where(
                log.c.kind.in_(["action_done", "ticket_told"])
            )
        )
        for job_id, kind, data in rows:
            values = json.loads(data)
            told.add((int(job_id), str(values["action" if kind == "action_done" else "step"])))
        frozen = set(
            conn.execute(
                sa.select(log.c.ticket_id).where(log.c.kind == "release_xml_frozen")
            ).scalars()
        )
        with_sha = set(
            conn.execute(
                sa.select(rel.c.ticket_id).where(rel.c.release_sha256.is_not(None))
            ).scalars()
        )
    found = [f"step {s} of job {j} without its event" for j, s in sorted(steps - told)]
    found += [f"the event of step {s} of job {j} without the step" for j, s in sorted(told - steps)]
    found += [f"release {t}: release.xml frozen without its event" for t in with_sha - frozen]
    found += [f"release {t}: release_xml_frozen without the record" for t in frozen - with_sha]
    return found


def places_match_areas(engine: sa.Engine) -> list[str]:
    """Each release's recorded place (``repository_path``, what RepositoryURL shows) is one of
    the areas it is published in (which ``rebuild`` checks against the log's publications and
    removals), or none when it is in none."""
    rel, held = tables.releases, tables.release_areas
    with engine.connect() as conn:
        places = dict(conn.execute(sa.select(rel.c.ticket_id, rel.c.repository_path)).all())
        areas: dict[int, set[str]] = {}
        for ticket, area in conn.execute(sa.select(held.c.ticket_id, held.c.area)):
            areas.setdefault(int(ticket), set()).add(str(area))
    return [
        f"release {t} is recorded at {place}, an area it is not published in "
        f"({', '.join(sorted(areas.get(t, ()))) or 'none'})"
        for t, place in sorted(places.items())
        if place is not None and place not in areas.get(int(t), set())
    ]


def problems(engine: sa.Engine) -> list[str]:
    """Every way the tables and the log disagree, and the chain's first broken link."""
    found = [d.describe() for d in rebuild.differences(engine)]
    found += checkpoints_match_events(engine)
    found += places_match_areas(engine)
    broken = chain_check.verify(engine).broken
    if broken is not None:
        found.append(f"chain: {broken.describe()}")
    return found
