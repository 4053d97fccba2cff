-- +goose Up
-- Segments: the built-in families (kept current from the scores) and custom rule segments.
-- Built-in segments are one row per (family, tier); custom ones hold their rule and, when a
-- partner key created them, the root of the subtree they are confined to.
CREATE TABLE segments (
    id           uuid        PRIMARY KEY,
    family       text        NOT NULL CHECK (family IN ('custom', 'value_tier', 'clv_tier', 'value_class', 'usage_tier', 'rfm', 'churn_band')),
    tier         text,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    strategy     text        NOT NULL DEFAULT '',
    definition   jsonb,
    scope_root   uuid,
    member_count bigint      NOT NULL DEFAULT 0,
    refreshed_at timestamptz,
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CHECK ((family = 'custom') = (definition IS NOT NULL)),
    CHECK ((family = 'custom') = (tier IS NULL))
);
CREATE UNIQUE INDEX segments_builtin_idx ON segments (family, tier) WHERE family <> 'custom';
CREATE INDEX segments_created_idx ON segments (created_at, id);

-- The built-in families partition the scored customers: one row per scored live customer with
-- its tier in each family and when it entered that tier.
CREATE TABLE customer_tiers (
    customer_id       uuid        PRIMARY KEY REFERENCES customers (id),
    value_tier        text        NOT NULL,
    value_tier_since  timestamptz NOT NULL,
    clv_tier          text        NOT NULL,
    clv_tier_since    timestamptz NOT NULL,
    value_class       text        NOT NULL,
    value_class_since timestamptz NOT NULL,
    usage_tier        text        NOT NULL,
    usage_tier_since  timestamptz NOT NULL,
    rfm               text        NOT NULL,
    rfm_since         timestamptz NOT NULL,
    churn_band        text        NOT NULL,
    churn_band_since  timestamptz NOT NULL
);

-- Settings and thresholds of the built-in families: one row. The thresholds are those of the
-- last full refresh, so one customer rescored in between is placed against the same edges.
CREATE TABLE segment_settings (
    singleton         boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    usage_medium_from integer     CHECK (usage_medium_from >= 1),
    usage_heavy_from  integer     CHECK (usage_heavy_from >= 1),
    rfm_map           jsonb,
    value_a_min       numeric,
    value_b_min       numeric,
    clv_a_min         numeric,
    clv_b_min         numeric,
    usage_light_max   double precision,
    usage_medium_max  double precision,
    refreshed_at      timestamptz,
    version           bigint      NOT NULL DEFAULT 1,
    CHECK ((usage_medium_from IS NULL) = (usage_heavy_from IS NULL)),
    CHECK (usage_heavy_from > usage_medium_from)
);
INSERT INTO segment_settings (singleton) VALUES (true);

-- Materialised members of custom segments.
CREATE TABLE segment_members (
    customer_id uuid        NOT NULL REFERENCES customers (id),
    segment_id  uuid        NOT NULL,
    entered_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, segment_id)
);
CREATE INDEX segment_members_segment_idx ON segment_members (segment_id, customer_id);

-- Every customer entering or leaving a segment, self-describing, in order of id.
CREATE TABLE segment_membership_changes (
    customer_id    uuid        NOT NULL,
    id             bigserial   NOT NULL,
    segment_id     uuid        NOT NULL,
    segment_family text        NOT NULL,
    segment_name   text        NOT NULL,
    change         text        NOT NULL CHECK (change IN ('entered', 'left')),
    changed_at     timestamptz NOT NULL,
    cause          text        NOT NULL CHECK (cause IN ('refresh', 'model_run', 'rescore', 'profile', 'definition', 'customer_deleted')),
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX segment_membership_changes_id_idx ON segment_membership_changes (id);

-- The deleted customers, so that refreshes skip their scores with an anti-join on this small
-- index instead of joining every customer.
CREATE INDEX customers_deleted_idx ON customers (id) WHERE deleted_at IS NOT NULL;

-- +goose Down
DROP INDEX customers_deleted_idx;
DROP TABLE segment_membership_changes;
DROP TABLE segment_members;
DROP TABLE segment_settings;
DROP TABLE customer_tiers;
DROP TABLE segments;
