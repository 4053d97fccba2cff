-- +goose Up
-- A partner key is confined to the subtree of one business customer: that customer and every
-- customer below it. A key without a root sees every customer.
ALTER TABLE api_keys ADD COLUMN root_customer_id uuid REFERENCES customers (id);
CREATE INDEX api_keys_root_idx ON api_keys (root_customer_id) WHERE root_customer_id IS NOT NULL;
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

-- +goose Down
DROP INDEX api_keys_created_idx;
DROP INDEX api_keys_root_idx;
ALTER TABLE api_keys DROP COLUMN root_customer_id;
