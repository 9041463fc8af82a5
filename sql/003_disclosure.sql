-- 003: pollution-source and EIA disclosure (the city's duties 2 and 3).
-- Enterprises and their discharge outlets, the disclosure catalogue (synced from
-- config/disclosure_catalog.toml), versioned disclosure records, administrative penalties,
-- EIA projects and their stages, enterprises' monitoring results (manual and online, HJ 212),
-- attachments, the bureau's bearer tokens and the audit log.
--
-- Search works for Chinese text in any database locale: pg_trgm ignores CJK characters in a
-- database whose LC_CTYPE is C, so documents are indexed by character bigrams of a
-- normalised text (NFKC, lower case) in a GIN index, and a hit is confirmed by substring.

-- ---------------------------------------------------------------------------------------
-- Search support
-- ---------------------------------------------------------------------------------------

-- The text as searched: NFKC (full-width forms and the ideographic space become ASCII),
-- lower case.
CREATE FUNCTION search_normalize(doc text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(normalize(coalesce(doc, ''), NFKC))
$$;

-- The terms of a text: runs between white space and punctuation (ASCII and CJK, listed
-- explicitly because character classes follow the locale and miss CJK punctuation in C).
CREATE FUNCTION search_terms(doc text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 20 AS $$
    SELECT w
    FROM regexp_split_to_table(
        search_normalize(doc),
        '[[:space:]!"#$%&''()*+,\-./:;<=>?@\[\\\]^_`{|}~、。〃〈〉《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟・…‥—–‘’“”·￥]+') AS w
    WHERE w <> ''
$$;

-- The distinct character bigrams of a text's terms (a term of one character has none: such
-- a query term is matched by substring alone).
CREATE FUNCTION search_bigrams(doc text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(w, i, 2) ORDER BY substr(w, i, 2)), '{}')
    FROM search_terms(doc) AS w
    CROSS JOIN LATERAL generate_series(1, char_length(w) - 1) AS i
$$;

-- Whether every term of the query occurs in the (normalised) document text. An empty
-- query matches nothing.
CREATE FUNCTION search_matches(doc_text text, query text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(bool_and(strpos(doc_text, w) > 0), false)
    FROM search_terms(query) AS w
$$;

-- ---------------------------------------------------------------------------------------
-- Unified social credit codes (GB 32100-2015)
-- ---------------------------------------------------------------------------------------

-- The 18-character code: registration authority, entity type, 6-digit administrative
-- division, 9-character organisation code (GB 11714), check character. The alphabet
-- excludes I, O, S, V and Z. The check character is 31 - (sum of value * 3^(i-1) mod 31)
-- mod 31, over the first 17 characters. The application also checks the organisation
-- code's own check character; the database enforces the credit code's.
CREATE FUNCTION credit_code_valid(code text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
    weights constant int[] := ARRAY[1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10,
                                    30, 28];
    total int := 0;
BEGIN
    IF code !~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$' THEN
        RETURN false;
    END IF;
    FOR i IN 1..17 LOOP
        total := total + (strpos(alphabet, substr(code, i, 1)) - 1) * weights[i];
    END LOOP;
    RETURN substr(alphabet, (31 - total % 31) % 31 + 1, 1) = substr(code, 18, 1);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Reference data
-- ---------------------------------------------------------------------------------------

-- The county-level units of Langfang (the stations' counties).
CREATE TABLE counties (
    code       text COLLATE "C" PRIMARY KEY,
    admin_code text NOT NULL DEFAULT '',
    name_zh    text NOT NULL,
    name_en    text NOT NULL,
    position   smallint NOT NULL
);
INSERT INTO counties (code, admin_code, name_zh, name_en, position) VALUES
    ('guangyang', '131003', '广阳区', 'Guangyang District', 1),
    ('anci', '131002', '安次区', 'Anci District', 2),
    ('ldz', '', '廊坊经济技术开发区',
     'Langfang Economic and Technological Development Area', 3),
    ('sanhe', '131082', '三河市', 'Sanhe City', 4),
    ('dachang', '131028', '大厂回族自治县', 'Dachang Hui Autonomous County', 5),
    ('xianghe', '131024', '香河县', 'Xianghe County', 6),
    ('guan', '131022', '固安县', 'Gu''an County', 7),
    ('yongqing', '131023', '永清县', 'Yongqing County', 8),
    ('bazhou', '131081', '霸州市', 'Bazhou City', 9),
    ('wenan', '131026', '文安县', 'Wen''an County', 10),
    ('dacheng', '131025', '大城县', 'Dacheng County', 11);

-- Monitored parameters, keyed by their HJ 212-2017 code so that online data (HJ 212) and
-- manual monitoring share one vocabulary. Packets carry no units: the unit is configured here.
CREATE TABLE monitoring_parameters (
    code     text COLLATE "C" PRIMARY KEY,
    medium   text NOT NULL,
    name_zh  text NOT NULL,
    name_en  text NOT NULL,
    unit     text NOT NULL,
    position smallint NOT NULL DEFAULT 0,
    CONSTRAINT monitoring_parameters_medium_check CHECK (medium IN ('gas', 'water'))
);
INSERT INTO monitoring_parameters (code, medium, name_zh, name_en, unit, position) VALUES
    ('a34013', 'gas', '颗粒物(烟尘)', 'particulate matter', 'mg/m³', 1),
    ('a21026', 'gas', '二氧化硫', 'sulphur dioxide', 'mg/m³', 2),
    ('a21002', 'gas', '氮氧化物', 'nitrogen oxides', 'mg/m³', 3),
    ('a21005', 'gas', '一氧化碳', 'carbon monoxide', 'mg/m³', 4),
    ('a24088', 'gas', '非甲烷总烃', 'non-methane hydrocarbons', 'mg/m³', 5),
    ('a00000', 'gas', '烟气流量', 'flue-gas flow', 'm³/s', 6),
    ('a19001', 'gas', '氧含量', 'oxygen', '%', 7),
    ('a01012', 'gas', '烟气温度', 'flue-gas temperature', '°C', 8),
    ('w01018', 'water', '化学需氧量', 'chemical oxygen demand', 'mg/L', 11),
    ('w21003', 'water', '氨氮', 'ammonia nitrogen', 'mg/L', 12),
    ('w21011', 'water', '总磷', 'total phosphorus', 'mg/L', 13),
    ('w21001', 'water', '总氮', 'total nitrogen', 'mg/L', 14),
    ('w01001', 'water', 'pH值', 'pH', '无量纲', 15),
    ('w01012', 'water', '悬浮物', 'suspended solids', 'mg/L', 16),
    ('w00000', 'water', '废水流量', 'wastewater flow', 'L/s', 17);

-- ---------------------------------------------------------------------------------------
-- Enterprises, the key-polluter list, discharge outlets
-- ---------------------------------------------------------------------------------------

CREATE TABLE enterprises (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    credit_code          text COLLATE "C" NOT NULL,
    name_zh              text NOT NULL,
    name_en              text NOT NULL DEFAULT '',
    county_code          text COLLATE "C" NOT NULL REFERENCES counties (code),
    industry_code        text NOT NULL DEFAULT '',     -- GB/T 4754 class, e.g. C3011
    industry             text NOT NULL DEFAULT '',
    address              text NOT NULL DEFAULT '',
    lat                  double precision,
    lon                  double precision,
    legal_representative text NOT NULL DEFAULT '',
    permit_no            text NOT NULL DEFAULT '',     -- discharge permit number
    -- national / provincial / city key enterprise (国控 / 省控 / 市控); NULL: none
    control_level        text,
    is_sample            boolean NOT NULL DEFAULT false,
    search_text          text NOT NULL DEFAULT '',
    search_tokens        text[] NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT enterprises_credit_code_key UNIQUE (credit_code),
    CONSTRAINT enterprises_credit_code_check CHECK (credit_code_valid(credit_code)),
    CONSTRAINT enterprises_control_level_check
        CHECK (control_level IN ('national', 'provincial', 'city')),
    CONSTRAINT enterprises_lat_check CHECK (lat BETWEEN -90 AND 90),
    CONSTRAINT enterprises_lon_check CHECK (lon BETWEEN -180 AND 180),
    CONSTRAINT enterprises_position_check CHECK ((lat IS NULL) = (lon IS NULL)),
    CONSTRAINT enterprises_name_check CHECK (btrim(name_zh) <> '')
);
CREATE INDEX enterprises_county_idx ON enterprises (county_code);
CREATE INDEX enterprises_search_idx ON enterprises USING gin (search_tokens);

-- The yearly list of key polluters (重点排污单位名录), published by the bureau before the
-- end of March: one row per enterprise and year, with the lists it is on.
CREATE TABLE key_polluter_listings (
    enterprise_id bigint NOT NULL REFERENCES enterprises (id),
    year          smallint NOT NULL,
    -- water, groundwater, air, noise, soil (土壤污染重点监管单位), risk (环境风险重点管控单位)
    categories    text[] NOT NULL,
    note          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT key_polluter_listings_pkey PRIMARY KEY (enterprise_id, year),
    CONSTRAINT key_polluter_listings_year_check CHECK (year BETWEEN 2000 AND 2100),
    CONSTRAINT key_polluter_listings_categories_check CHECK (
        cardinality(categories) >= 1
        AND categories <@ ARRAY['water', 'groundwater', 'air', 'noise', 'soil', 'risk'])
);
CREATE INDEX key_polluter_listings_year_idx ON key_polluter_listings (year);

-- A discharge outlet, identified by its number in the discharge permit (e.g. DA001 for
-- gas, DW001 for water). hj212_mn links a CEMS data logger (HJ 212 MN) to the outlet.
CREATE TABLE discharge_outlets (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise_id bigint NOT NULL REFERENCES enterprises (id),
    outlet_code   text COLLATE "C" NOT NULL,
    name          text NOT NULL DEFAULT '',
    kind          text NOT NULL,
    -- main / general outlet in the permit (主要 / 一般排放口)
    category      text,
    lat           double precision,
    lon           double precision,
    hj212_mn      text COLLATE "C",
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT discharge_outlets_code_key UNIQUE (enterprise_id, outlet_code),
    CONSTRAINT discharge_outlets_mn_key UNIQUE (hj212_mn),
    CONSTRAINT discharge_outlets_kind_check CHECK (kind IN ('gas', 'water')),
    CONSTRAINT discharge_outlets_category_check CHECK (category IN ('main', 'general')),
    CONSTRAINT discharge_outlets_position_check CHECK ((lat IS NULL) = (lon IS NULL))
);

-- Permitted limits per parameter. A lower limit exists for pH (6-9); for flue gas the
-- limit applies to the value converted to the reference oxygen content (基准氧含量).
CREATE TABLE outlet_limits (
    outlet_id        bigint NOT NULL REFERENCES discharge_outlets (id),
    parameter        text COLLATE "C" NOT NULL REFERENCES monitoring_parameters (code),
    upper_limit      numeric,
    lower_limit      numeric,
    unit             text NOT NULL,
    standard         text NOT NULL DEFAULT '',   -- e.g. GB 13223-2011
    reference_o2_pct numeric,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outlet_limits_pkey PRIMARY KEY (outlet_id, parameter),
    CONSTRAINT outlet_limits_some_check CHECK (upper_limit IS NOT NULL OR lower_limit IS NOT NULL),
    CONSTRAINT outlet_limits_order_check
        CHECK (upper_limit IS NULL OR lower_limit IS NULL OR lower_limit <= upper_limit)
);

-- ---------------------------------------------------------------------------------------
-- Attachments (files live under the attachment directory, named by storage_name)
-- ---------------------------------------------------------------------------------------

CREATE TABLE attachments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- generated; never derived from the uploaded name
    storage_name text COLLATE "C" NOT NULL,
    -- the uploaded name, sanitised, for display and Content-Disposition only
    filename     text NOT NULL,
    content_type text COLLATE "C" NOT NULL,
    size_bytes   bigint NOT NULL,
    sha256       text COLLATE "C" NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    uploaded_by  text NOT NULL,
    is_sample    boolean NOT NULL DEFAULT false,
    CONSTRAINT attachments_storage_name_key UNIQUE (storage_name),
    CONSTRAINT attachments_storage_name_check CHECK (storage_name ~ '^[0-9a-f]{32}$'),
    CONSTRAINT attachments_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT attachments_size_check CHECK (size_bytes > 0)
);
CREATE INDEX attachments_sha256_idx ON attachments (sha256);

-- ---------------------------------------------------------------------------------------
-- The disclosure catalogue (categories and sub-items; synced from the TOML file)
-- ---------------------------------------------------------------------------------------

CREATE TABLE disclosure_categories (
    code           text COLLATE "C" PRIMARY KEY,
    name_zh        text NOT NULL,
    name_en        text NOT NULL,
    description_zh text NOT NULL DEFAULT '',
    description_en text NOT NULL DEFAULT '',
    position       smallint NOT NULL,
    -- false when the catalogue no longer lists it (records keep referring to it)
    active         boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE disclosure_subitems (
    code           text COLLATE "C" PRIMARY KEY,
    category_code  text COLLATE "C" NOT NULL REFERENCES disclosure_categories (code),
    name_zh        text NOT NULL,
    name_en        text NOT NULL,
    description_zh text NOT NULL DEFAULT '',
    description_en text NOT NULL DEFAULT '',
    position       smallint NOT NULL,
    -- required / optional / none: whether a record names an enterprise
    enterprise     text NOT NULL DEFAULT 'optional',
    -- where the duty comes from, e.g. {city-2014, measures-2021:art12.1}
    basis          text[] NOT NULL DEFAULT '{}',
    active         boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT disclosure_subitems_enterprise_check
        CHECK (enterprise IN ('required', 'optional', 'none'))
);
CREATE INDEX disclosure_subitems_category_idx ON disclosure_subitems (category_code, position);

-- ---------------------------------------------------------------------------------------
-- Disclosure records and their versions
-- ---------------------------------------------------------------------------------------

-- The current state of a record. Nothing is ever deleted: a correction is a new version
-- (status 'corrected'), a retraction is a new version with a public reason (status
-- 'retracted'); every version stays in disclosure_record_versions.
CREATE TABLE disclosure_records (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the bureau's reference (document number or import key): the natural key of imports
    ref           text COLLATE "C",
    subitem_code  text COLLATE "C" NOT NULL REFERENCES disclosure_subitems (code),
    enterprise_id bigint REFERENCES enterprises (id),
    title         text NOT NULL,
    body          text NOT NULL DEFAULT '',
    effective_on  date,
    -- first publication; updated_at: the latest version or status change
    published_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    status        text NOT NULL DEFAULT 'published',
    -- the public note of the latest correction, or the public reason of the retraction
    status_reason text NOT NULL DEFAULT '',
    retracted_at  timestamptz,
    publisher     text NOT NULL DEFAULT 'bureau',
    is_sample     boolean NOT NULL DEFAULT false,
    search_text   text NOT NULL DEFAULT '',
    search_tokens text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT disclosure_records_ref_key UNIQUE (ref),
    CONSTRAINT disclosure_records_status_check
        CHECK (status IN ('published', 'corrected', 'retracted')),
    -- a retraction always says why, in public
    CONSTRAINT disclosure_records_retraction_check CHECK (
        (status = 'retracted') = (retracted_at IS NOT NULL)
        AND (status <> 'retracted' OR btrim(status_reason) <> '')),
    CONSTRAINT disclosure_records_version_check CHECK (version >= 1),
    CONSTRAINT disclosure_records_publisher_check CHECK (publisher IN ('bureau', 'enterprise')),
    CONSTRAINT disclosure_records_title_check CHECK (btrim(title) <> '')
);
CREATE INDEX disclosure_records_published_idx ON disclosure_records (published_at DESC, id DESC);
CREATE INDEX disclosure_records_subitem_idx
    ON disclosure_records (subitem_code, published_at DESC, id DESC);
CREATE INDEX disclosure_records_enterprise_idx
    ON disclosure_records (enterprise_id, published_at DESC, id DESC);
CREATE INDEX disclosure_records_search_idx ON disclosure_records USING gin (search_tokens);

-- Every version of every record as it was published: created (1), corrected, retracted.
CREATE TABLE disclosure_record_versions (
    record_id     bigint NOT NULL REFERENCES disclosure_records (id),
    version       integer NOT NULL,
    change        text NOT NULL,
    subitem_code  text COLLATE "C" NOT NULL REFERENCES disclosure_subitems (code),
    enterprise_id bigint REFERENCES enterprises (id),
    title         text NOT NULL,
    body          text NOT NULL,
    effective_on  date,
    published_at  timestamptz NOT NULL,
    -- the correction note or the retraction reason (public)
    note          text NOT NULL DEFAULT '',
    actor         text NOT NULL,
    CONSTRAINT disclosure_record_versions_pkey PRIMARY KEY (record_id, version),
    CONSTRAINT disclosure_record_versions_change_check
        CHECK (change IN ('created', 'corrected', 'retracted')),
    CONSTRAINT disclosure_record_versions_first_check
        CHECK ((version = 1) = (change = 'created'))
);

-- The attachments of each version, in order.
CREATE TABLE disclosure_record_attachments (
    record_id     bigint NOT NULL,
    version       integer NOT NULL,
    position      smallint NOT NULL,
    attachment_id uuid NOT NULL REFERENCES attachments (id),
    CONSTRAINT disclosure_record_attachments_pkey PRIMARY KEY (record_id, version, position),
    CONSTRAINT disclosure_record_attachments_version_fkey FOREIGN KEY (record_id, version)
        REFERENCES disclosure_record_versions (record_id, version)
);
CREATE INDEX disclosure_record_attachments_attachment_idx
    ON disclosure_record_attachments (attachment_id);

-- ---------------------------------------------------------------------------------------
-- Administrative penalties
-- ---------------------------------------------------------------------------------------

CREATE TABLE penalties (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decision_no        text NOT NULL,              -- e.g. 廊环罚〔2025〕12号
    enterprise_id      bigint REFERENCES enterprises (id),
    party_name         text NOT NULL,
    credit_code        text COLLATE "C",           -- NULL for a natural person
    violation          text NOT NULL,
    legal_basis        text NOT NULL,
    penalty            text NOT NULL,              -- kind and content of the penalty
    fine_amount        numeric(14, 2),             -- yuan, exact
    decision_date      date NOT NULL,
    -- pending / in_progress / completed / court (强制执行申请) / under_review (复议或诉讼) /
    -- revoked (撤销)
    enforcement_status text NOT NULL DEFAULT 'pending',
    record_id          bigint REFERENCES disclosure_records (id),
    attachment_id      uuid REFERENCES attachments (id),   -- the decision document
    published_at       timestamptz NOT NULL DEFAULT now(),
    is_sample          boolean NOT NULL DEFAULT false,
    search_text        text NOT NULL DEFAULT '',
    search_tokens      text[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT penalties_decision_no_key UNIQUE (decision_no),
    CONSTRAINT penalties_credit_code_check
        CHECK (credit_code IS NULL OR credit_code_valid(credit_code)),
    CONSTRAINT penalties_fine_check CHECK (fine_amount >= 0),
    CONSTRAINT penalties_enforcement_check CHECK (enforcement_status IN
        ('pending', 'in_progress', 'completed', 'court', 'under_review', 'revoked'))
);
CREATE INDEX penalties_decision_date_idx ON penalties (decision_date DESC, id DESC);
CREATE INDEX penalties_enterprise_idx ON penalties (enterprise_id, decision_date DESC);
CREATE INDEX penalties_search_idx ON penalties USING gin (search_tokens);

-- ---------------------------------------------------------------------------------------
-- Environmental impact assessment: projects and the stages of their approval
-- ---------------------------------------------------------------------------------------

CREATE TABLE eia_projects (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the project code of the investment-project platform, or the bureau's file number
    project_code        text COLLATE "C" NOT NULL,
    name                text NOT NULL,
    builder             text NOT NULL,            -- 建设单位
    builder_credit_code text COLLATE "C",
    enterprise_id       bigint REFERENCES enterprises (id),
    county_code         text COLLATE "C" NOT NULL REFERENCES counties (code),
    location            text NOT NULL,
    lat                 double precision,
    lon                 double precision,
    -- the category in the EIA classification catalogue (建设项目环境影响评价分类管理名录)
    project_type        text NOT NULL,
    -- report (报告书) or table (报告表)
    document_kind       text NOT NULL,
    eia_agency          text NOT NULL DEFAULT '',   -- who wrote the report
    summary             text NOT NULL DEFAULT '',
    is_sample           boolean NOT NULL DEFAULT false,
    search_text         text NOT NULL DEFAULT '',
    search_tokens       text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT eia_projects_code_key UNIQUE (project_code),
    CONSTRAINT eia_projects_credit_code_check
        CHECK (builder_credit_code IS NULL OR credit_code_valid(builder_credit_code)),
    CONSTRAINT eia_projects_document_kind_check CHECK (document_kind IN ('report', 'table')),
    CONSTRAINT eia_projects_position_check CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE INDEX eia_projects_county_idx ON eia_projects (county_code);
CREATE INDEX eia_projects_search_idx ON eia_projects USING gin (search_tokens);

-- acceptance (受理公示, with the report's full text), pre_approval (拟批准公示, with its
-- public-comment period), approval (审批决定), completion_acceptance (竣工环境保护验收批复).
CREATE TABLE eia_stages (
    project_id    bigint NOT NULL REFERENCES eia_projects (id),
    stage         text NOT NULL,
    published_on  date NOT NULL,
    comment_from  date,
    comment_until date,
    decision_no   text,
    decision_date date,
    -- approval stages: approved / rejected (不予批准)
    outcome       text,
    attachment_id uuid REFERENCES attachments (id),   -- the full text (PDF)
    note          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT eia_stages_pkey PRIMARY KEY (project_id, stage),
    CONSTRAINT eia_stages_stage_check
        CHECK (stage IN ('acceptance', 'pre_approval', 'approval', 'completion_acceptance')),
    CONSTRAINT eia_stages_comment_check CHECK (
        (comment_from IS NULL) = (comment_until IS NULL) AND comment_until >= comment_from),
    -- the pre-approval notice opens a public-comment period
    CONSTRAINT eia_stages_pre_approval_check
        CHECK (stage <> 'pre_approval' OR comment_from IS NOT NULL),
    -- decisions carry their number and date
    CONSTRAINT eia_stages_decision_check CHECK (
        stage NOT IN ('approval', 'completion_acceptance')
        OR (decision_no IS NOT NULL AND decision_date IS NOT NULL)),
    CONSTRAINT eia_stages_outcome_check CHECK (outcome IN ('approved', 'rejected'))
);
CREATE UNIQUE INDEX eia_stages_decision_no_key ON eia_stages (decision_no)
    WHERE decision_no IS NOT NULL;
CREATE INDEX eia_stages_published_idx ON eia_stages (published_on DESC);

-- ---------------------------------------------------------------------------------------
-- Monitoring results (self-monitoring, supervisory monitoring, online HJ 212 data)
-- ---------------------------------------------------------------------------------------

-- measured_at: the sampling time of an instant sample; for period values (HJ 212 minute,
-- hourly, daily data) the END of the period, like every hourly value of the service
-- (HJ 212's DataTime is the period's start: add the period). value is the value judged
-- against the limit (for flue gas with a reference O2: the converted value, HJ 212 -ZsAvg);
-- measured_value keeps the measured one when they differ.
CREATE TABLE monitoring_results (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outlet_id           bigint NOT NULL REFERENCES discharge_outlets (id),
    parameter           text COLLATE "C" NOT NULL REFERENCES monitoring_parameters (code),
    -- self (企业自行监测), supervisory (监督性监测), online (在线监控, HJ 212)
    source              text NOT NULL,
    method              text NOT NULL,              -- automatic / manual
    period              text NOT NULL DEFAULT 'instant',
    measured_at         timestamptz NOT NULL,
    value               numeric,
    measured_value      numeric,
    min_value           numeric,
    max_value           numeric,
    amount              numeric,                    -- emitted amount in the period (-Cou)
    unit                text NOT NULL,
    upper_limit         numeric,                    -- the limit in force, copied
    lower_limit         numeric,
    -- HJ 212 data flag: N normal, F stopped, M maintenance, S set value, D fault,
    -- C calibration, T above range, B communication fault, P power fault (2005)
    flag                text COLLATE "C" NOT NULL DEFAULT 'N',
    -- judged only for a normal value with a limit
    compliant           boolean GENERATED ALWAYS AS (
        CASE WHEN value IS NULL OR flag <> 'N' OR (upper_limit IS NULL AND lower_limit IS NULL)
             THEN NULL
             ELSE (upper_limit IS NULL OR value <= upper_limit)
                  AND (lower_limit IS NULL OR value >= lower_limit) END) STORED,
    -- 超标倍数 = (C - S) / S, exact (not rounded)
    exceedance_multiple numeric GENERATED ALWAYS AS (
        CASE WHEN flag = 'N' AND value > upper_limit AND upper_limit > 0
             THEN trim_scale((value - upper_limit) / upper_limit) END) STORED,
    agency              text NOT NULL DEFAULT '',   -- the monitoring body
    report_no           text NOT NULL DEFAULT '',   -- monitoring report number
    record_id           bigint REFERENCES disclosure_records (id),
    is_sample           boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- natural key: online data are resent by devices; imports are idempotent
    CONSTRAINT monitoring_results_natural_key
        UNIQUE (outlet_id, parameter, source, period, measured_at),
    CONSTRAINT monitoring_results_source_check
        CHECK (source IN ('self', 'supervisory', 'online')),
    CONSTRAINT monitoring_results_method_check CHECK (method IN ('automatic', 'manual')),
    CONSTRAINT monitoring_results_online_check CHECK (source <> 'online' OR method = 'automatic'),
    CONSTRAINT monitoring_results_period_check
        CHECK (period IN ('instant', 'minute', 'hour', 'day')),
    CONSTRAINT monitoring_results_flag_check CHECK (flag IN ('N', 'F', 'M', 'S', 'D', 'C', 'T',
                                                            'B', 'P'))
);
CREATE INDEX monitoring_results_time_idx ON monitoring_results (measured_at DESC, id DESC);
CREATE INDEX monitoring_results_outlet_idx
    ON monitoring_results (outlet_id, parameter, measured_at DESC);
CREATE INDEX monitoring_results_exceedance_idx ON monitoring_results (measured_at DESC)
    WHERE compliant = false;

-- ---------------------------------------------------------------------------------------
-- The bureau's bearer tokens and the audit log
-- ---------------------------------------------------------------------------------------

-- A token is shown once when created; only its SHA-256 is stored. key_id (in the token's
-- text) finds the row; the hash is then compared in constant time.
CREATE TABLE admin_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id       text COLLATE "C" NOT NULL,
    name         text NOT NULL,
    token_hash   bytea NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL DEFAULT '',
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT admin_tokens_key_id_key UNIQUE (key_id),
    CONSTRAINT admin_tokens_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT admin_tokens_scopes_check CHECK (cardinality(scopes) >= 1)
);
-- one live token per name; a revoked name can be reused
CREATE UNIQUE INDEX admin_tokens_live_name_key ON admin_tokens (name) WHERE revoked_at IS NULL;

-- Every change made through the admin API, the CLI or an import: who, when, what,
-- before and after (JSON of the row or the version). Append-only.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,       -- token:<name>, import:<file>, cli:<user>, seed
    action         text NOT NULL,       -- create, update, correct, retract, upload, revoke …
    entity         text NOT NULL,       -- enterprise, outlet, record, penalty, eia_project …
    entity_id      text NOT NULL DEFAULT '',
    before         jsonb,
    after          jsonb,
    client_address text NOT NULL DEFAULT '',
    request_id     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, id DESC);

-- ---------------------------------------------------------------------------------------
-- Rules kept by the database: search columns, nothing deleted, history and audit immutable
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION disclosure_records_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := search_normalize(concat_ws(E'\n', NEW.title, NEW.body, NEW.ref,
        (SELECT e.name_zh || ' ' || e.credit_code FROM enterprises e
         WHERE e.id = NEW.enterprise_id)));
    NEW.search_tokens := search_bigrams(NEW.search_text);
    RETURN NEW;
END
$$;
CREATE TRIGGER disclosure_records_search BEFORE INSERT OR UPDATE ON disclosure_records
    FOR EACH ROW EXECUTE FUNCTION disclosure_records_search();

CREATE FUNCTION enterprises_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := search_normalize(concat_ws(E'\n', NEW.name_zh, NEW.name_en,
        NEW.credit_code, NEW.industry, NEW.address));
    NEW.search_tokens := search_bigrams(NEW.search_text);
    RETURN NEW;
END
$$;
CREATE TRIGGER enterprises_search BEFORE INSERT OR UPDATE ON enterprises
    FOR EACH ROW EXECUTE FUNCTION enterprises_search();

CREATE FUNCTION penalties_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := search_normalize(concat_ws(E'\n', NEW.decision_no, NEW.party_name,
        NEW.credit_code, NEW.violation, NEW.legal_basis, NEW.penalty));
    NEW.search_tokens := search_bigrams(NEW.search_text);
    RETURN NEW;
END
$$;
CREATE TRIGGER penalties_search BEFORE INSERT OR UPDATE ON penalties
    FOR EACH ROW EXECUTE FUNCTION penalties_search();

CREATE FUNCTION eia_projects_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := search_normalize(concat_ws(E'\n', NEW.project_code, NEW.name,
        NEW.builder, NEW.location, NEW.project_type, NEW.eia_agency, NEW.summary));
    NEW.search_tokens := search_bigrams(NEW.search_text);
    RETURN NEW;
END
$$;
CREATE TRIGGER eia_projects_search BEFORE INSERT OR UPDATE ON eia_projects
    FOR EACH ROW EXECUTE FUNCTION eia_projects_search();

-- Published information is corrected or retracted, never deleted; its history and the
-- audit log are never rewritten.
CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER disclosure_records_no_delete BEFORE DELETE ON disclosure_records
    FOR EACH ROW EXECUTE FUNCTION refuse_change('records are corrected or retracted');
CREATE TRIGGER disclosure_records_no_truncate BEFORE TRUNCATE ON disclosure_records
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('records are corrected or retracted');
CREATE TRIGGER disclosure_record_versions_immutable
    BEFORE UPDATE OR DELETE ON disclosure_record_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change('versions are history');
CREATE TRIGGER disclosure_record_attachments_immutable
    BEFORE UPDATE OR DELETE ON disclosure_record_attachments
    FOR EACH ROW EXECUTE FUNCTION refuse_change('versions are history');
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change('the audit log is append-only');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('the audit log is append-only');

-- ---------------------------------------------------------------------------------------
-- For the public side: records with their catalogue and enterprise names, and search
-- ---------------------------------------------------------------------------------------

CREATE VIEW disclosure_record_list AS
SELECT r.id, r.ref, r.subitem_code, s.category_code, s.name_zh AS subitem_name_zh,
       s.name_en AS subitem_name_en, c.name_zh AS category_name_zh,
       c.name_en AS category_name_en, r.enterprise_id, e.credit_code,
       e.name_zh AS enterprise_name_zh, e.name_en AS enterprise_name_en, e.county_code,
       r.title, r.body, r.effective_on, r.published_at, r.updated_at, r.version, r.status,
       r.status_reason, r.retracted_at, r.publisher, r.is_sample
FROM disclosure_records r
JOIN disclosure_subitems s ON s.code = r.subitem_code
JOIN disclosure_categories c ON c.code = s.category_code
LEFT JOIN enterprises e ON e.id = r.enterprise_id;

-- Records matching every term of q (Chinese or not), newest first, with optional filters
-- and a keyset cursor (published_at, id) of the last row of the previous page.
CREATE FUNCTION search_disclosures(
    q text,
    p_category text DEFAULT NULL,
    p_subitem text DEFAULT NULL,
    p_enterprise_id bigint DEFAULT NULL,
    p_county text DEFAULT NULL,
    p_include_retracted boolean DEFAULT true,
    p_before_published timestamptz DEFAULT NULL,
    p_before_id bigint DEFAULT NULL,
    p_limit integer DEFAULT 20
) RETURNS SETOF disclosure_records
LANGUAGE sql STABLE AS $$
    SELECT r.*
    FROM disclosure_records r
    JOIN disclosure_subitems s ON s.code = r.subitem_code
    LEFT JOIN enterprises e ON e.id = r.enterprise_id
    WHERE r.search_tokens @> search_bigrams(q)
      AND search_matches(r.search_text, q)
      AND (p_category IS NULL OR s.category_code = p_category)
      AND (p_subitem IS NULL OR r.subitem_code = p_subitem)
      AND (p_enterprise_id IS NULL OR r.enterprise_id = p_enterprise_id)
      AND (p_county IS NULL OR e.county_code = p_county)
      AND (p_include_retracted OR r.status <> 'retracted')
      AND (p_before_published IS NULL
           OR (r.published_at, r.id) < (p_before_published, coalesce(p_before_id, 0)))
    ORDER BY r.published_at DESC, r.id DESC
    LIMIT least(greatest(coalesce(p_limit, 20), 1), 500)
$$;
