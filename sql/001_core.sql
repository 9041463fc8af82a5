-- 001: stations, hourly observations, published station/city records, revisions, runs.
-- Times are timestamptz (stored UTC). Hourly values are labelled hour-ending: hour_end
-- 08:00+08 is the mean of 07:00-08:00 China Standard Time.

-- Codes are ASCII identifiers: COLLATE "C" compares them bytewise (fast index builds).
CREATE TABLE stations (
    code        text COLLATE "C" PRIMARY KEY,
    name_zh     text NOT NULL,
    name_en     text NOT NULL,
    county_zh   text NOT NULL DEFAULT '',
    county_en   text NOT NULL DEFAULT '',
    admin_code  text NOT NULL DEFAULT '',
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    timezone    text NOT NULL DEFAULT 'Asia/Shanghai',
    source      text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    -- counted in the city's values (synthetic benchmark stations are not)
    city_member boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stations_source_check CHECK (source IN ('simulator', 'http', 'hj212'))
);

-- One row per station x pollutant x hour: the value as the station reported it.
-- Rejected values never land here (see rejected_values); flagged values (maintenance,
-- calibration, fault …) do, with valid = false, so that nothing is lost.
CREATE TABLE observations (
    station_code text COLLATE "C" NOT NULL,
    pollutant    text COLLATE "C" NOT NULL,
    hour_end     timestamptz NOT NULL,
    value        numeric,
    flag         text NOT NULL DEFAULT 'N',
    valid        boolean NOT NULL,
    source       text NOT NULL,
    -- when the value was stored (the ingest's transaction time) and last changed
    received_at  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    revision     integer NOT NULL DEFAULT 0,
    CONSTRAINT observations_pkey PRIMARY KEY (station_code, pollutant, hour_end),
    CONSTRAINT observations_pollutant_check
        CHECK (pollutant IN ('so2', 'no2', 'co', 'o3', 'pm10', 'pm2_5')),
    -- a value is usable for averages and the AQI only with flag N and a value
    CONSTRAINT observations_valid_check CHECK (NOT valid OR (value IS NOT NULL AND flag = 'N')),
    CONSTRAINT observations_value_check CHECK (value IS NULL OR value >= 0)
) PARTITION BY RANGE (hour_end);

-- Values refused by validation, kept for audit; never used for publication.
CREATE TABLE rejected_values (
    id           bigserial PRIMARY KEY,
    station_code text COLLATE "C" NOT NULL,
    pollutant    text,
    hour_end     timestamptz,
    raw_value    text,
    raw_flag     text,
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    run_id       bigint
);
CREATE INDEX rejected_values_station_time_idx ON rejected_values (station_code, received_at);

-- Pollutant sets are stored as bitmasks (bit i: the i-th of so2, no2, co, o3, pm10, pm2_5):
-- compact to write. pollutant_names(mask) gives the sorted names, e.g.
-- SELECT pollutant_names(primary_mask) FROM station_hourly.
CREATE FUNCTION pollutant_names(mask smallint) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(name ORDER BY name), '{}')
    FROM unnest(ARRAY['so2', 'no2', 'co', 'o3', 'pm10', 'pm2_5']) WITH ORDINALITY AS p(name, i)
    WHERE mask & (1 << (i::int - 1)) <> 0
$$;

-- The station's published hourly record (CNEMC-style): 1 h values, moving averages with the
-- valid hours behind them, IAQIs, AQI and its level, under the scheme in force that hour.
CREATE TABLE station_hourly (
    station_code        text COLLATE "C" NOT NULL,
    hour_end            timestamptz NOT NULL,
    scheme              text NOT NULL,
    -- Record values are float8 holding decimals of at most 6 places (micro-units): the
    -- shortest text of each double is that decimal, so nothing is lost; the observations
    -- keep the stations' values exactly (numeric).
    so2 float8, so2_24h float8, no2 float8, no2_24h float8,
    co float8, co_24h float8, o3 float8, o3_8h float8, o3_24h float8, o3_8h_24h float8,
    pm10 float8, pm10_24h float8, pm2_5 float8, pm2_5_24h float8,
    so2_24h_hours smallint, no2_24h_hours smallint, co_24h_hours smallint,
    o3_8h_hours smallint, o3_24h_hours smallint, o3_8h_24h_hours smallint,
    pm10_24h_hours smallint, pm2_5_24h_hours smallint,
    -- pollutant → HJ 212 flag of each 1 h value that is not valid (NULL: all valid)
    flags               jsonb,
    iaqi_so2 smallint, iaqi_no2 smallint, iaqi_co smallint,
    iaqi_o3 smallint, iaqi_pm10 smallint, iaqi_pm2_5 smallint,
    aqi                 smallint,
    computed_aqi        smallint,
    level               smallint,
    primary_mask        smallint NOT NULL DEFAULT 0,
    exceeding_mask      smallint,          -- NULL: the scheme has no exceeding pollutants
    missing_mask        smallint NOT NULL DEFAULT 0,
    beyond_index        boolean NOT NULL DEFAULT false,
    first_published_at  timestamptz NOT NULL DEFAULT now(),
    computed_at         timestamptz NOT NULL DEFAULT now(),
    revision            integer NOT NULL DEFAULT 0,
    CONSTRAINT station_hourly_pkey PRIMARY KEY (station_code, hour_end),
    CONSTRAINT station_hourly_level_check CHECK (level BETWEEN 1 AND 6),
    CONSTRAINT station_hourly_aqi_check CHECK (aqi BETWEEN 0 AND 500)
) PARTITION BY RANGE (hour_end);

-- Daily records of a natural day (Asia/Shanghai): 24 h means, O3 daily max 1 h and 8 h.
CREATE TABLE station_daily (
    station_code        text COLLATE "C" NOT NULL,
    day                 date NOT NULL,
    scheme              text NOT NULL,
    so2_24h float8, no2_24h float8, co_24h float8, pm10_24h float8, pm2_5_24h float8,
    o3_24h float8, o3_8h_24h float8,
    so2_24h_hours smallint, no2_24h_hours smallint, co_24h_hours smallint,
    pm10_24h_hours smallint, pm2_5_24h_hours smallint, o3_24h_hours smallint,
    o3_8h_24h_windows smallint,
    iaqi_so2 smallint, iaqi_no2 smallint, iaqi_co smallint,
    iaqi_o3 smallint, iaqi_pm10 smallint, iaqi_pm2_5 smallint,
    aqi                 smallint,
    computed_aqi        smallint,
    level               smallint,
    primary_mask        smallint NOT NULL DEFAULT 0,
    exceeding_mask      smallint,          -- NULL: the scheme has no exceeding pollutants
    missing_mask        smallint NOT NULL DEFAULT 0,
    beyond_index        boolean NOT NULL DEFAULT false,
    first_published_at  timestamptz NOT NULL DEFAULT now(),
    computed_at         timestamptz NOT NULL DEFAULT now(),
    revision            integer NOT NULL DEFAULT 0,
    CONSTRAINT station_daily_pkey PRIMARY KEY (station_code, day)
);

-- City records: each pollutant is the mean of the stations' values; the AQI is computed from
-- those means (HJ 663), not taken as the largest station AQI.
CREATE TABLE city_hourly (LIKE station_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE city_hourly RENAME COLUMN station_code TO area_code;
ALTER TABLE city_hourly ADD COLUMN stations smallint NOT NULL DEFAULT 0;
ALTER TABLE city_hourly ADD CONSTRAINT city_hourly_pkey PRIMARY KEY (area_code, hour_end);

CREATE TABLE city_daily (LIKE station_daily INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE city_daily RENAME COLUMN station_code TO area_code;
ALTER TABLE city_daily ADD COLUMN stations smallint NOT NULL DEFAULT 0;
ALTER TABLE city_daily ADD CONSTRAINT city_daily_pkey PRIMARY KEY (area_code, day);

-- Every change to a value that was already stored or published: old, new, when, why.
CREATE TABLE revisions (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    subject      text NOT NULL,
    field        text NOT NULL,
    period_end   timestamptz NOT NULL,
    old_value    text,
    new_value    text,
    reason       text NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    run_id       bigint,
    CONSTRAINT revisions_kind_check CHECK (kind IN (
        'observation', 'station_hourly', 'station_daily', 'city_hourly', 'city_daily'))
);
CREATE INDEX revisions_changed_at_idx ON revisions (changed_at);
CREATE INDEX revisions_subject_idx ON revisions (subject, period_end);

CREATE TABLE collection_runs (
    id                bigserial PRIMARY KEY,
    trigger           text NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    target_hour       timestamptz,
    stations_polled   integer NOT NULL DEFAULT 0,
    stations_ok       integer NOT NULL DEFAULT 0,
    stations_failed   integer NOT NULL DEFAULT 0,
    observations      integer NOT NULL DEFAULT 0,
    rejected          integer NOT NULL DEFAULT 0,
    hours_backfilled  integer NOT NULL DEFAULT 0,
    revisions         integer NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'running',
    instance          text NOT NULL DEFAULT '',
    CONSTRAINT collection_runs_status_check CHECK (status IN ('running', 'ok', 'partial', 'failed'))
);
CREATE INDEX collection_runs_started_idx ON collection_runs (started_at);

-- Where each station's collection stands: the hour through which it last answered.
CREATE TABLE station_cursors (
    station_code         text COLLATE "C" PRIMARY KEY,
    answered_through     timestamptz,
    newest_hour          timestamptz,
    last_success_at      timestamptz,
    last_attempt_at      timestamptz,
    last_outcome         text,
    consecutive_failures integer NOT NULL DEFAULT 0
);

-- One row per station poll of a run: what the station's data logger answered.
CREATE TABLE station_polls (
    run_id        bigint NOT NULL REFERENCES collection_runs (id) ON DELETE CASCADE,
    station_code  text COLLATE "C" NOT NULL,
    outcome       text NOT NULL,
    attempts      smallint NOT NULL DEFAULT 1,
    duration_s    double precision NOT NULL,
    hours         integer NOT NULL DEFAULT 0,
    rejected      integer NOT NULL DEFAULT 0,
    error         text,
    polled_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT station_polls_pkey PRIMARY KEY (run_id, station_code)
);
CREATE INDEX station_polls_station_idx ON station_polls (station_code, polled_at);
