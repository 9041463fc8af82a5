-- 002: monthly range partitions for the time-series tables, created ahead of time.
-- Re-runnable: CREATE OR REPLACE. Month boundaries are in UTC.

CREATE OR REPLACE FUNCTION ensure_month_partition(parent regclass, month_start date)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month_start)::date;
    part_name text := parent::text || '_' || to_char(first_day, 'YYYYMM');
BEGIN
    IF to_regclass(part_name) IS NOT NULL THEN
        RETURN part_name;
    END IF;
    -- Serialise creators: two instances may race to create the same month.
    PERFORM pg_advisory_xact_lock(hashtext('aqi_service.partitions'));
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
        part_name, parent,
        (first_day::timestamp AT TIME ZONE 'UTC'),
        ((first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    RETURN part_name;
END;
$$;

-- Partitions for every month that [from_time, to_time] touches, for every time-series table.
CREATE OR REPLACE FUNCTION ensure_partitions(from_time timestamptz, to_time timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_time AT TIME ZONE 'UTC')::date;
    last_month date := date_trunc('month', to_time AT TIME ZONE 'UTC')::date;
    made integer := 0;
BEGIN
    WHILE m <= last_month LOOP
        PERFORM ensure_month_partition('observations', m);
        PERFORM ensure_month_partition('station_hourly', m);
        made := made + 1;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END;
$$;

-- The current month and the next three exist from the start.
SELECT ensure_partitions(now() - interval '1 month', now() + interval '3 months');
