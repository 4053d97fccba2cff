-- +goose Up
-- customer_scores loses its foreign key to customers. A model run replaces the whole table
-- (it builds a new one and swaps it in), and dropping a table with a foreign key locks the
-- referenced table exclusively: every read of customers would wait for the swap, and a read
-- that joins both tables could deadlock with it. Every score is computed from the
-- transactions of a live customer, which reference it, and customers are never deleted, only
-- marked deleted.
ALTER TABLE customer_scores DROP CONSTRAINT customer_scores_customer_id_fkey;

-- +goose Down
ALTER TABLE customer_scores ADD CONSTRAINT customer_scores_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id);
