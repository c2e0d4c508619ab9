"""Periodic housekeeping of accounts (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from accounts.sessions import SessionStore


@shared_task(ignore_result=True)
def sessions_clear_expired() -> None:
    """Delete expired sessions (what `manage.py clearsessions` does): a signed-in browser
    leaves its row behind when it never logs out, and nothing else removes it."""
    SessionStore.clear_expired()
