-- 004: the public side of disclosure: the Atom feed reads record versions newest first,
-- and the yearly statistics count corrections and retractions by when they were made.
CREATE INDEX disclosure_record_versions_published_idx
    ON disclosure_record_versions (published_at DESC, record_id DESC, version DESC);
