"""Publish (to come): alert rules over finished runs, as a run sink. Reads core/ only."""
