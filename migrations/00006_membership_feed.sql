-- +goose Up
-- Segment memberships join the change feed: every entry into a segment is a `created`
-- segment_membership change, every exit a `deleted` one, with the segment as the entity, the
-- customer's path for subtree scoping, and the membership as its state. A custom segment made
-- with a partner key is that subtree's own: its membership changes are scoped to the
-- segment's root, so a customer moved to another subtree takes no trace of it along.

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

-- +goose Down
DROP TRIGGER segment_membership_changes_capture ON segment_membership_changes;
DROP FUNCTION capture_segment_membership_changes();
