-- A rate budget shared by several workers (DESIGN §6, §7): each sink
-- origin's row is reserved and updated atomically, by single statements
-- that read the database clock (now()), never a worker's.
--
-- remaining / reset_unix become nullable: a row exists before any budget
-- is known (while one worker probes for it), and for an origin that sends
-- no X-RateLimit headers at all (mibudge: 429 + Retry-After only).
ALTER TABLE rate_budgets
    ALTER COLUMN remaining DROP NOT NULL,
    ALTER COLUMN reset_unix DROP NOT NULL,
    -- NULL: no response seen yet; true: the origin sends X-RateLimit-*
    -- headers; false: it sends none (only its 429s hold the workers).
    ADD COLUMN metered BOOLEAN,
    -- A 429's Retry-After (or the window's Reset): every worker waits until then.
    ADD COLUMN blocked_until TIMESTAMPTZ,
    -- Pacing: the earliest instant the next paced request may go.
    ADD COLUMN next_slot TIMESTAMPTZ,
    -- While the budget is unknown (or its window has ended), one worker's
    -- request is the probe whose answer tells it; the others wait for that
    -- answer until this instant at most.
    ADD COLUMN probe_until TIMESTAMPTZ;
