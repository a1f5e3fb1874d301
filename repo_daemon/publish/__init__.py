"""Publication: the content-addressed pool, immutable snapshots of hard links, areas swapped in
atomically, the mirror index.
"""
