"""Fault suite: the service as a real process, broken on purpose, judged by its end state."""
