-- 005: runs that fail or are abandoned say why; a durable "to derive" mark written with the
-- observations; per-station progress of the initial back-fill.

-- 'abandoned': a run left 'running' by a process that died (closed by the next leader).
ALTER TABLE collection_runs DROP CONSTRAINT collection_runs_status_check;
ALTER TABLE collection_runs ADD CONSTRAINT collection_runs_status_check
    CHECK (status IN ('running', 'ok', 'partial', 'failed', 'abandoned'));
-- Why a run failed or was abandoned (NULL for ok and partial runs).
ALTER TABLE collection_runs ADD COLUMN error text;
CREATE INDEX collection_runs_running_idx ON collection_runs (id) WHERE status = 'running';
CREATE INDEX collection_runs_success_idx ON collection_runs (finished_at)
    WHERE status IN ('ok', 'partial');

-- The oldest hour a station must still be asked for by its initial back-fill (NULL: the
-- station has answered through a recent hour once; the look-back window applies).
ALTER TABLE station_cursors ADD COLUMN backfill_from timestamptz;

-- Hours of a station whose derived records are missing or stale: one row per station and
-- ingest batch, written in the transaction that stores the observations. Stage 'station':
-- the station's records are due; 'city': they are written (in the same transaction that
-- moved the mark on), the city's records of those hours are due. The row is deleted in the
-- transaction that writes the city's records.
CREATE TABLE derive_pending (
    id           bigserial PRIMARY KEY,
    stage        text NOT NULL DEFAULT 'station',
    station_code text COLLATE "C" NOT NULL,
    first_hour   timestamptz NOT NULL,
    last_hour    timestamptz NOT NULL,
    run_id       bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT derive_pending_stage_check CHECK (stage IN ('station', 'city')),
    CONSTRAINT derive_pending_hours_check CHECK (first_hour <= last_hour)
);
CREATE INDEX derive_pending_stage_idx ON derive_pending (stage, id);

-- Observations stored before this migration whose station records are missing (a crash
-- between the observations and their records) are marked once here.
INSERT INTO derive_pending (station_code, first_hour, last_hour)
SELECT o.station_code, min(o.hour_end), max(o.hour_end)
FROM (SELECT DISTINCT station_code, hour_end FROM observations) o
LEFT JOIN station_hourly h USING (station_code, hour_end)
WHERE h.station_code IS NULL
GROUP BY o.station_code;
