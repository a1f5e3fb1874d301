"""``rollout demo``: a release walked from ticket to installed package, with nothing to set up.

The modules, one job each:

- ``run``: the narration, step by step (``run_demo`` is what ``rollout demo`` calls);
- ``layout``: the demo's folder and the bridge's settings (``ROLLOUT_*`` and a TOML copy);
- ``services``: the child processes it starts (``rollout run``, ``rollout repo serve``);
- ``ticket_view``: what a person sees on the ticket, and waiting for the bridge's answer;
- ``narrate``: short, coloured output;
- ``sample``: a sample release of real .rpm and .deb packages with its release.xml;
- ``rsync_source``: the technology provider's rsync daemon;
- ``apt_client``: apt-get installing into a throw-away root, as a site would;
- ``tools``, ``errors``: the programs it runs and what it raises.

The demo plays the technology provider, the release managers and a site; the bridge itself runs
as it would in production, in its own process, configured only through ``ROLLOUT_*``.
"""
