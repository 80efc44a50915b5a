-- Cooperating workers (DESIGN §7, issue #13). A sync is a *round* of work
-- units — fetch one source, dedupe, queue one sink, deliver one (sink,
-- sink account) — in phases; every worker of the round claims units with
-- a lease (owner + expiry, database clock, Unix milliseconds) and keeps it
-- with a heartbeat. A dead worker's leases expire and another worker (or
-- the next run) finishes its units. Writes made under a lease (delivery
-- state, watermarks, the unit's result) are conditional on the lease still
-- being held, so a stale holder cannot commit.
CREATE TABLE work_rounds (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL,
    -- Hash of the configuration (and source selection) every worker of the
    -- round must share: a worker with another config is refused.
    config_hash   TEXT NOT NULL,
    started_ms    BIGINT NOT NULL,
    finished_ms   BIGINT,
    -- 'done', or 'abandoned' (every worker gone; a new round starts)
    outcome       TEXT
);
CREATE INDEX work_rounds_open ON work_rounds (finished_ms);

CREATE TABLE work_units (
    round_id      BIGINT NOT NULL REFERENCES work_rounds (id),
    unit          TEXT NOT NULL,
    -- 1 fetch, 2 dedupe, 3 queue, 4 deliver: a phase starts when the
    -- previous one is done.
    phase         INTEGER NOT NULL,
    -- The lease: worker id and expiry (Unix ms, database clock).
    owner         TEXT,
    expires_ms    BIGINT,
    heartbeat_ms  BIGINT,
    claimed_ms    BIGINT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    done_ms       BIGINT,
    -- JSON written by the unit (a fetch unit's accounts and window start).
    result        TEXT,
    -- The last failure; with done_ms set, the unit gave up.
    error         TEXT,
    PRIMARY KEY (round_id, unit)
);
CREATE INDEX work_units_owner ON work_units (owner);

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    -- host name, PID namespace and boot id: workers with the same node see
    -- each other's processes, so a gone pid there is a dead worker.
    node          TEXT NOT NULL,
    config_hash   TEXT NOT NULL,
    round_id      BIGINT,
    started_ms    BIGINT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL,
    finished_ms   BIGINT,
    outcome       TEXT
);

-- The worker a run belongs to: a run still 'running' is interrupted only
-- when its worker is gone (several workers run at once on PostgreSQL).
ALTER TABLE runs ADD COLUMN worker TEXT;
