-- +goose Up
-- The change log: every change to customers, transactions and segment memberships, written by
-- statement-level triggers in the same transaction as the change, so every write path (single
-- writes, COPY-based batches, subtree moves) is captured set-based. The feed serves rows in
-- (xid, seq) order and only below the oldest transaction still running, so a transaction that
-- commits late can never land behind a reader's cursor.
CREATE TABLE change_log (
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq            bigserial   NOT NULL,
    entity_type    text        NOT NULL CHECK (entity_type IN ('customer', 'transaction', 'segment_membership')),
    operation      text        NOT NULL CHECK (operation IN ('created', 'updated', 'deleted')),
    entity_id      uuid        NOT NULL,
    -- The customer the entity belongs to (the customer itself for customer changes), and its
    -- path at the time of the change (ancestors || customer_id), for subtree scoping.
    customer_id    uuid        NOT NULL,
    path           uuid[]      NOT NULL,
    -- The state after the change (before it, for a deletion); null for transactions, which
    -- never change after they are recorded and are read from their table.
    state          jsonb,
    changed_fields text[],
    actor          uuid,
    changed_at     timestamptz NOT NULL DEFAULT now(),
    -- Set on the tombstone a customer leaves in the subtree it was moved out of: its path
    -- after the move. Such a row is served only to keys confined to a subtree the customer
    -- left (path holds their root, moved_to does not); everyone else reads the move as the
    -- customer's update.
    moved_to       uuid[],
    PRIMARY KEY (xid, seq)
);
CREATE INDEX change_log_customer_idx ON change_log (customer_id, xid, seq);
CREATE INDEX change_log_changed_at_idx ON change_log (changed_at);

-- The last position pruned from the change log: a reader whose cursor lies before it may have
-- missed changes, and is told so instead of silently skipping them.
CREATE TABLE change_log_horizon (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    xid       xid8    NOT NULL,
    seq       bigint  NOT NULL
);

-- changes_captured says whether the writing transaction's changes go to the change log: not
-- while centric.capture_changes is 'off' (the demo loader of an empty database), in which case
-- the triggers return before reading their transition tables.
CREATE FUNCTION changes_captured() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('centric.capture_changes', true), '') <> 'off'
$$;

-- change_actor is the API key the writing transaction named in the centric.actor setting.
CREATE FUNCTION change_actor() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('centric.actor', true), '')::uuid
$$;

-- The customer fields whose change is recorded; version and updated_at change with every write.
CREATE FUNCTION customer_changed_fields(o jsonb, n jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(k ORDER BY k), '{}')
    FROM jsonb_object_keys(n) AS k
    WHERE k NOT IN ('version', 'updated_at', 'deleted_at') AND o -> k IS DISTINCT FROM n -> k
$$;

-- Every capture trigger writes its statement's changes with one INSERT … SELECT from its
-- transition tables, so a statement of any size is captured set-based, in the order given.

-- +goose StatementBegin
CREATE FUNCTION capture_customer_inserts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT changes_captured() THEN
        RETURN NULL;
    END IF;
    -- Parents before children, so a consumer applying the feed in order always knows the parent.
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor)
    SELECT 'customer', 'created', n.id, n.id, n.ancestors || n.id, to_jsonb(n), NULL, change_actor()
    FROM new_rows n ORDER BY cardinality(n.ancestors), n.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The planner takes a transition table for one row; a nested loop over old and new rows
-- would compare every pair (a million for a batch of 1,000), so the join is hashed.
CREATE FUNCTION capture_customer_updates() RETURNS trigger
LANGUAGE plpgsql SET enable_nestloop = off AS $$
BEGIN
    IF NOT changes_captured() THEN
        RETURN NULL;
    END IF;
    -- Each row is turned into JSON once (OFFSET 0 keeps the subquery from being flattened,
    -- which would repeat to_jsonb for every use).
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor)
    SELECT 'customer', CASE WHEN x.deleted THEN 'deleted' ELSE 'updated' END, x.id, x.id, x.path, x.nj,
        customer_changed_fields(x.oj, x.nj), change_actor()
    FROM (
        SELECT n.id, n.ancestors || n.id AS path, cardinality(n.ancestors) AS depth,
            o.deleted_at IS NULL AND n.deleted_at IS NOT NULL AS deleted, to_jsonb(o) AS oj, to_jsonb(n) AS nj
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        OFFSET 0
    ) x
    WHERE x.oj <> x.nj
    ORDER BY x.depth, x.id;
    -- A customer moved to another place in the hierarchy also leaves a tombstone, with its
    -- state before the move, in the subtrees it left.
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor, moved_to)
    SELECT 'customer', 'deleted', n.id, n.id, o.ancestors || o.id, to_jsonb(o), NULL, change_actor(), n.ancestors || n.id
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE o.ancestors IS DISTINCT FROM n.ancestors AND o.deleted_at IS NULL
    ORDER BY cardinality(o.ancestors) DESC, o.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION capture_customer_deletes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT changes_captured() THEN
        RETURN NULL;
    END IF;
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor)
    SELECT 'customer', 'deleted', o.id, o.id, o.ancestors || o.id, to_jsonb(o), NULL, change_actor()
    FROM old_rows o ORDER BY cardinality(o.ancestors) DESC, o.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION capture_transaction_inserts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT changes_captured() THEN
        RETURN NULL;
    END IF;
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor)
    SELECT 'transaction', 'created', n.id, n.customer_id, c.ancestors || c.id, NULL, NULL, change_actor()
    FROM new_rows n JOIN customers c ON c.id = n.customer_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION capture_transaction_deletes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT changes_captured() THEN
        RETURN NULL;
    END IF;
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor)
    SELECT 'transaction', 'deleted', o.id, o.customer_id, c.ancestors || c.id, to_jsonb(o), NULL, change_actor()
    FROM old_rows o JOIN customers c ON c.id = o.customer_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER customers_capture_inserts AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_customer_inserts();
CREATE TRIGGER customers_capture_updates AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_customer_updates();
CREATE TRIGGER customers_capture_deletes AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_customer_deletes();
CREATE TRIGGER transactions_capture_inserts AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_transaction_inserts();
CREATE TRIGGER transactions_capture_deletes AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_transaction_deletes();

-- Idempotency keys: the first response to a POST with an Idempotency-Key, per API key, kept
-- for replay until it expires. A row without a status is a request still in flight.
CREATE TABLE idempotency_keys (
    api_key_id   uuid        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       integer,
    headers      jsonb,
    body         bytea,
    started_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TRIGGER transactions_capture_deletes ON transactions;
DROP TRIGGER transactions_capture_inserts ON transactions;
DROP TRIGGER customers_capture_deletes ON customers;
DROP TRIGGER customers_capture_updates ON customers;
DROP TRIGGER customers_capture_inserts ON customers;
DROP FUNCTION capture_transaction_deletes();
DROP FUNCTION capture_transaction_inserts();
DROP FUNCTION capture_customer_deletes();
DROP FUNCTION capture_customer_updates();
DROP FUNCTION capture_customer_inserts();
DROP FUNCTION customer_changed_fields(jsonb, jsonb);
DROP FUNCTION change_actor();
DROP FUNCTION changes_captured();
DROP TABLE change_log_horizon;
DROP TABLE change_log;
