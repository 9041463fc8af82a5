"""Collection: station clients, validation, ingest, derived records and the schedule."""
