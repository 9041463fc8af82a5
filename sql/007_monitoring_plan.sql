-- 007: each station's monitoring plan: the pollutants it does not measure (shown `/` on
-- the national platform). Such a pollutant is neither indexed nor missing in the station's
-- records, and the station adds no value of it to the city's means. Stations stored
-- before this migration measure all six.
ALTER TABLE stations ADD COLUMN not_monitored text[] NOT NULL DEFAULT '{}';
ALTER TABLE stations ADD CONSTRAINT stations_not_monitored_check
    CHECK (not_monitored <@ ARRAY['so2', 'no2', 'co', 'o3', 'pm10', 'pm2_5']::text[]);
