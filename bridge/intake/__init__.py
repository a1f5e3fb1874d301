"""How changes come in: RT's signed hooks, checked (``webhooks``), stored with a group commit
(``inbox``) and answered over HTTP (``receiver``); reconciliation from RT's history
(``reconcile``); and the comments that explain refusals (``refusals``).
"""
