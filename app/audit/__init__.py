"""Audit trail: who changed what, when, from where (append-only table `audit_events`).

The domain side: notes, the background writer and the ports; the table is `app.store.audit_log`.
"""
