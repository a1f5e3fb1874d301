"""The long-running daemon: its parts assembled from Settings, the scheduler, and the runner that
claims, processes and completes jobs.
"""
