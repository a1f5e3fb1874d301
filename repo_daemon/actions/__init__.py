"""What the workflow's actions do. ``ticket`` plans what is written back on the RT ticket
(fields, watchers, status, comments, replies); ``slots`` handles the staged-rollout slot;
``repository`` does the repository work. ``transitions`` runs them in the order the
definition says."""
