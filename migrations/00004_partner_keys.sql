-- +goose Up
-- A partner key is confined to the subtree of one business customer: that customer and every
-- customer below it. A key without a root sees every customer. A key may carry its own rate
-- limit (requests per second and burst); without one the server's default applies.
ALTER TABLE api_keys
    ADD COLUMN root_customer_id uuid REFERENCES customers (id),
    ADD COLUMN rate_limit       double precision CHECK (rate_limit > 0),
    ADD COLUMN rate_burst       integer CHECK (rate_burst >= 1),
    ADD CONSTRAINT api_keys_rate_limit_whole CHECK ((rate_limit IS NULL) = (rate_burst IS NULL));
CREATE INDEX api_keys_root_idx ON api_keys (root_customer_id) WHERE root_customer_id IS NOT NULL;
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

-- +goose Down
DROP INDEX api_keys_created_idx;
DROP INDEX api_keys_root_idx;
ALTER TABLE api_keys
    DROP CONSTRAINT api_keys_rate_limit_whole,
    DROP COLUMN rate_burst,
    DROP COLUMN rate_limit,
    DROP COLUMN root_customer_id;
