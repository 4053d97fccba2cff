-- +goose Up
-- Customers: consumers and business accounts. The hierarchy is parent_id plus a materialised
-- path (ancestors, root first) so subtree queries are one indexed predicate on any engine.
CREATE TABLE customers (
    id                   uuid        PRIMARY KEY,
    kind                 text        NOT NULL CHECK (kind IN ('consumer', 'business')),
    role                 text        CHECK (role IN ('enterprise', 'institution', 'distributor', 'dealer', 'reseller', 'other')),
    parent_id            uuid,
    ancestors            uuid[]      NOT NULL DEFAULT '{}',
    name                 text,
    email                text,
    phone                text,
    country              text,
    industry             text,
    tags                 text[]      NOT NULL DEFAULT '{}',
    attributes           jsonb       NOT NULL DEFAULT '{}',
    owner                text,
    acquired_at          timestamptz,
    acquisition_channel  text,
    acquisition_cost     numeric     CHECK (acquisition_cost >= 0),
    acquisition_currency text,
    referred_by          uuid,
    external_refs        jsonb       NOT NULL DEFAULT '[]',
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    deleted_at           timestamptz,
    CHECK (role IS NULL OR kind = 'business'),
    CHECK ((acquisition_cost IS NULL) = (acquisition_currency IS NULL))
);
CREATE INDEX customers_ancestors_idx ON customers USING gin (ancestors);
CREATE INDEX customers_parent_idx ON customers (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX customers_tags_idx ON customers USING gin (tags);
CREATE INDEX customers_created_idx ON customers (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_updated_idx ON customers (updated_at, id);
CREATE INDEX customers_name_idx ON customers (lower(coalesce(name, '')), id) WHERE deleted_at IS NULL;
CREATE INDEX customers_email_idx ON customers (lower(email)) WHERE deleted_at IS NULL;

-- The one authority for partners' ids of customers: (external_id, source) is unique among live
-- customers. A deleted customer's references are removed so the ids can be reused.
CREATE TABLE customer_external_refs (
    external_id text NOT NULL,
    source      text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (external_id, source)
);
CREATE INDEX customer_external_refs_customer_idx ON customer_external_refs (customer_id);

-- Transactions: purchases, refunds and the costs of winning and serving a customer.
CREATE TABLE transactions (
    customer_id uuid        NOT NULL REFERENCES customers (id),
    id          uuid        NOT NULL,
    type        text        NOT NULL CHECK (type IN ('purchase', 'refund', 'cost')),
    occurred_at timestamptz NOT NULL,
    amount      numeric     NOT NULL CHECK (amount >= 0),
    currency    text        NOT NULL,
    product     text,
    category    text,
    quantity    integer     CHECK (quantity > 0),
    margin      numeric,
    channel     text,
    dealer_id   uuid,
    source      text,
    external_id text,
    metadata    jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, id),
    UNIQUE (customer_id, source, external_id),
    CHECK ((source IS NULL) = (external_id IS NULL))
);
CREATE INDEX transactions_id_idx ON transactions (id);
CREATE INDEX transactions_customer_time_idx ON transactions (customer_id, occurred_at, id);
CREATE INDEX transactions_time_idx ON transactions (occurred_at, id);
CREATE INDEX transactions_created_idx ON transactions (created_at, id);

-- The one authority for partners' ids of transactions, unique per source across customers.
CREATE TABLE transaction_external_refs (
    external_id    text NOT NULL,
    source         text NOT NULL,
    customer_id    uuid NOT NULL,
    transaction_id uuid NOT NULL,
    PRIMARY KEY (external_id, source)
);

-- API keys: only a SHA-256 digest of the secret is kept.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    prefix       text        NOT NULL UNIQUE,
    secret_hash  bytea       NOT NULL,
    scopes       text[]      NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE transaction_external_refs;
DROP TABLE transactions;
DROP TABLE customer_external_refs;
DROP TABLE customers;
