"""Publish (to come): flagged samples queued for people, as a run sink. Reads core/ only."""
