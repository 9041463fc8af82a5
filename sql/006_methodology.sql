-- 006: the methodology the stored records were derived with, and stations added by a
-- history import.

-- One row: which reading of the schemes the stored records follow. At start-up the leader
-- compares it with the code's and recomputes the affected hours as revisions (a
-- methodology correction with its public reason), then writes the code's version here.
-- Records stored before this migration were derived with the 2012 text's reading.
CREATE TABLE methodology (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    version    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO methodology (version) VALUES ('hourly_2012=text');

-- 'import': a station added from a history file (aqi-service import hourly --add-stations);
-- kept active when the configuration is synced, never a member of the city aggregate.
ALTER TABLE stations DROP CONSTRAINT stations_source_check;
ALTER TABLE stations ADD CONSTRAINT stations_source_check
    CHECK (source IN ('simulator', 'http', 'hj212', 'import'));
