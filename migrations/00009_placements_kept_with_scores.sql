-- +goose Up
-- Built-in placements are kept current where scores are written: a live rescore places its
-- customers, and moves them between the value buckets below, in the transaction that stores
-- their scores. A refresh then reads the buckets instead of every score, and only moves the
-- customers whose values lie between an old and a new threshold.
--
-- A model run instead replaces the whole scores table. placed_scores_table names (by oid) the
-- table every customer was last placed from in full, and the buckets counted from; a refresh
-- that finds another table in its place counts and places everyone again.
ALTER TABLE segment_settings ADD COLUMN placed_scores_table oid;

-- The distribution of the live scores that the tier thresholds come from: per family
-- ('net_value' and 'clv': logarithmic buckets of the positive values; 'purchases': the number
-- of purchase occasions) the customers and the sum of their values.
CREATE TABLE segment_value_buckets (
    family    text    NOT NULL CHECK (family IN ('net_value', 'clv', 'purchases')),
    bucket    integer NOT NULL,
    customers bigint  NOT NULL,
    total     numeric NOT NULL,
    PRIMARY KEY (family, bucket)
);

-- Every membership change is logged under its customer's path: a refresh that moves tens of
-- thousands of customers reads their paths from this index alone instead of their rows.
CREATE INDEX customers_path_idx ON customers (id) INCLUDE (ancestors);

-- +goose Down
DROP INDEX customers_path_idx;
DROP TABLE segment_value_buckets;
ALTER TABLE segment_settings DROP COLUMN placed_scores_table;
