-- Intentionally empty (no schema change). PostgreSQL's 0011 makes
-- rate_budgets a budget shared by several workers; SQLite is one worker
-- per file, keeps its in-process rate gate and the last-seen snapshot of
-- 0003. This file keeps the migration numbers of both backends aligned.
SELECT 1;
