-- +goose Up
-- Model runs: one fit of the purchase and spend models, and the scoring it drove.
CREATE TABLE model_runs (
    id                 uuid             PRIMARY KEY,
    status             text             NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    model              text             NOT NULL CHECK (model IN ('bgnbd', 'mbgnbd')),
    time_unit          text             NOT NULL CHECK (time_unit IN ('day', 'week', 'month')),
    calibration_end    timestamptz      NOT NULL,
    currency           text             NOT NULL,
    penalty            double precision NOT NULL CHECK (penalty >= 0),
    clv_horizon_months integer          NOT NULL CHECK (clv_horizon_months > 0),
    clv_discount_rate  double precision NOT NULL CHECK (clv_discount_rate >= 0),
    clv_margin         double precision NOT NULL CHECK (clv_margin > 0),
    requested_at       timestamptz      NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    result             jsonb,
    error              jsonb
);
CREATE INDEX model_runs_requested_idx ON model_runs (requested_at, id);
CREATE INDEX model_runs_succeeded_idx ON model_runs (finished_at) WHERE status = 'succeeded';
-- At most one run is queued or running at a time.
CREATE UNIQUE INDEX model_runs_one_active_idx ON model_runs ((true)) WHERE status IN ('queued', 'running');

-- Customer scores: one row per scored customer, kept current by model runs and by live
-- rescoring when the customer's transactions change. Amounts are in the run's currency.
CREATE TABLE customer_scores (
    customer_id            uuid             PRIMARY KEY REFERENCES customers (id),
    model_run_id           uuid             NOT NULL,
    currency               text             NOT NULL,
    observation_end        timestamptz      NOT NULL,
    frequency              integer          NOT NULL,
    recency                double precision NOT NULL,
    t                      double precision NOT NULL,
    monetary               numeric          NOT NULL,
    purchases              integer          NOT NULL,
    first_purchase_at      timestamptz      NOT NULL,
    last_purchase_at       timestamptz      NOT NULL,
    revenue                numeric          NOT NULL,
    refunds                numeric          NOT NULL,
    cost                   numeric          NOT NULL,
    net_value              numeric          NOT NULL,
    p_alive                double precision NOT NULL,
    churn_risk             double precision NOT NULL,
    churn_band             text             NOT NULL CHECK (churn_band IN ('low', 'medium', 'high')),
    expected_purchases_30d double precision NOT NULL,
    expected_purchases_90d double precision NOT NULL,
    expected_purchases_365d double precision NOT NULL,
    expected_spend         numeric          NOT NULL,
    clv                    numeric          NOT NULL,
    rfm_recency            smallint         NOT NULL,
    rfm_frequency          smallint         NOT NULL,
    rfm_monetary           smallint         NOT NULL,
    rfm_segment            text             NOT NULL,
    computed_at            timestamptz      NOT NULL
);
CREATE INDEX customer_scores_churn_idx ON customer_scores (churn_risk, customer_id);
CREATE INDEX customer_scores_clv_idx ON customer_scores (clv, customer_id);

-- +goose Down
DROP TABLE customer_scores;
DROP TABLE model_runs;
