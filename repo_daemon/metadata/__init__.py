"""Repository metadata built into each snapshot before it goes live (createrepo_c, apt-ftparchive),
signing, and client configuration files.
"""
