-- +goose Up
-- Segment membership changes are written straight into the change log, one row per customer
-- and write: the segments the customer entered and those it left. They used to be staged one
-- row per segment in segment_membership_changes and copied by a trigger, which cost two rows
-- and a join per change; a refresh that moves a few percent of a million customers wrote
-- hundreds of thousands of them.
DROP TRIGGER segment_membership_changes_capture ON segment_membership_changes;
DROP FUNCTION capture_segment_membership_changes();
DROP TABLE segment_membership_changes;

-- Rows already in the log take the new shape: one segment entered or left each.
UPDATE change_log SET operation = 'updated', entity_id = customer_id,
    state = jsonb_build_object('customer_id', state -> 'customer_id', 'cause', state -> 'cause', 'changed_at', state -> 'changed_at',
        'entered', CASE WHEN state ->> 'change' = 'entered' THEN jsonb_build_array(jsonb_build_object(
            'id', state -> 'segment_id', 'name', state -> 'segment_name', 'family', state -> 'segment_family')) ELSE '[]' END,
        'left', CASE WHEN state ->> 'change' = 'left' THEN jsonb_build_array(jsonb_build_object(
            'id', state -> 'segment_id', 'name', state -> 'segment_name', 'family', state -> 'segment_family')) ELSE '[]' END)
WHERE entity_type = 'segment_membership';

-- The audit trail, the only reader by customer, never shows memberships: they stay out of the
-- index, which saves a random index insertion per membership change.
DROP INDEX change_log_customer_idx;
CREATE INDEX change_log_customer_idx ON change_log (customer_id, xid, seq) WHERE entity_type <> 'segment_membership';

-- Members sorted by net value, and the value tiers' thresholds read the values at a tier edge
-- from it instead of scanning every score.
CREATE INDEX customer_scores_net_value_idx ON customer_scores (net_value, customer_id);

-- +goose Down
DROP INDEX customer_scores_net_value_idx;
DROP INDEX change_log_customer_idx;
CREATE INDEX change_log_customer_idx ON change_log (customer_id, xid, seq);
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

-- The rows already written in the per-customer shape stay as they are.
-- +goose StatementBegin
CREATE FUNCTION capture_segment_membership_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT changes_captured() THEN
        RETURN NULL;
    END IF;
    INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, changed_fields, actor)
    SELECT 'segment_membership', CASE n.change WHEN 'entered' THEN 'created' ELSE 'deleted' END,
        n.segment_id, n.customer_id,
        CASE WHEN g.scope_root IS NULL THEN c.ancestors || c.id ELSE ARRAY[g.scope_root] END,
        jsonb_build_object(
            'segment_id', n.segment_id, 'segment_name', n.segment_name, 'segment_family', n.segment_family,
            'customer_id', n.customer_id, 'change', n.change, 'cause', n.cause,
            'changed_at', to_char(n.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        NULL, change_actor()
    FROM new_rows n JOIN customers c ON c.id = n.customer_id LEFT JOIN segments g ON g.id = n.segment_id
    ORDER BY n.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER segment_membership_changes_capture AFTER INSERT ON segment_membership_changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_segment_membership_changes();
