"""How changes come in: RT's signed hooks (checked, stored with a group commit), reconciliation
from RT's history, and the comments that explain refusals.
"""
