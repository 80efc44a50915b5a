//! [`WorkLeases`](crate::WorkLeases) and lease fencing, written once and
//! instantiated per backend by `leases_impl!`. Each backend module defines
//! `NOW_MS` (the database clock as Unix milliseconds, SQL), `SKIP_LOCKED`
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, empty on SQLite, whose write
//! lock serializes claims), `lock_rounds` (serializes round creation) and
//! `push_key_list` (` IN`/` NOT IN` one bound list of keys).

macro_rules! leases_impl {
    ($Store:ident, $Db:ty) => {
        use crate::leases::{
            CoordinationReport, DeliveryScope, Fence, Joined, LeaseRow, Phase, RoundRow, UnitSpec, WorkerInfo,
            WorkerRow,
        };


        impl $Store {
            /// ` AND EXISTS (the bound lease is still held, with `margin`
            /// ms left)`, when this store is bound to a lease.
            fn push_fence(&self, q: &mut QueryBuilder<'_, $Db>, margin: bool) {
                if let Some(f) = &self.fence {
                    q.push(" AND EXISTS (SELECT 1 FROM work_units f WHERE f.round_id = ")
                        .push_bind(f.round)
                        .push(" AND f.unit = ")
                        .push_bind(f.unit.clone())
                        .push(" AND f.owner = ")
                        .push_bind(f.owner.clone())
                        .push(format!(" AND f.done_ms IS NULL AND f.expires_ms > {NOW_MS} + "))
                        .push_bind(if margin { f.margin_ms } else { 0 })
                        .push(")");
                }
            }

            /// After a fenced write changed nothing: [`StoreError::LeaseLost`]
            /// when the lease is the reason, else `Ok(false)` (the row's
            /// state had moved: another worker's doing, as before leases).
            async fn fence_verdict(&self, margin: bool) -> Result<bool, StoreError> {
                let Some(f) = &self.fence else { return Ok(false) };
                let mut q = QueryBuilder::<$Db>::new("SELECT COUNT(*) FROM work_units f WHERE 1 = 1");
                q.push(" AND f.round_id = ").push_bind(f.round);
                q.push(" AND f.unit = ").push_bind(f.unit.clone());
                q.push(" AND f.owner = ").push_bind(f.owner.clone());
                q.push(format!(" AND f.done_ms IS NULL AND f.expires_ms > {NOW_MS} + "))
                    .push_bind(if margin { f.margin_ms } else { 0 });
                let held: i64 = q
                    .build()
                    .fetch_one(&self.pool)
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(self.fail("checking a lease"))?;
                if held > 0 {
                    Ok(false)
                } else {
                    Err(StoreError::LeaseLost { unit: f.unit.clone(), owner: f.owner.clone() })
                }
            }

            /// ` AND <transactions alias>.(source, account) in the bound delivery scope`.
            fn push_scope(&self, q: &mut QueryBuilder<'_, $Db>, t: &str) {
                let Some(scope) = &self.scope else { return };
                push_scope(q, scope, t);
            }

            /// Inside a write transaction, check first that the bound lease
            /// is held — with at least its margin left when `margin` — and
            /// lock it on PostgreSQL until commit.
            async fn check_fence_in(&self, db: &mut <$Db as sqlx::Database>::Connection, margin: bool) -> Result<(), StoreError> {
                let Some(f) = &self.fence else { return Ok(()) };
                let mut q = QueryBuilder::<$Db>::new("SELECT unit FROM work_units WHERE round_id = ");
                q.push_bind(f.round)
                    .push(" AND unit = ")
                    .push_bind(f.unit.clone())
                    .push(" AND owner = ")
                    .push_bind(f.owner.clone())
                    .push(format!(" AND done_ms IS NULL AND expires_ms > {NOW_MS} + "))
                    .push_bind(if margin { f.margin_ms } else { 0 })
                    .push(FOR_UPDATE);
                let held = q.build().fetch_optional(&mut *db).await.map_err(self.fail("checking a lease"))?;
                match held {
                    Some(_) => Ok(()),
                    None => Err(StoreError::LeaseLost { unit: f.unit.clone(), owner: f.owner.clone() }),
                }
            }
        }

        fn push_scope(q: &mut QueryBuilder<'_, $Db>, scope: &DeliveryScope, t: &str) {
            if scope.accounts.is_empty() {
                if !scope.except {
                    q.push(" AND 1 = 0");
                }
                return;
            }
            q.push(format!(" AND {t}source || ':' || {t}source_account_id"));
            // One bound list, however many accounts (no bind limit).
            push_key_list(q, &scope.accounts, scope.except);
        }

        impl crate::WorkLeases for $Store {
            fn bound(&self, fence: Fence, scope: Option<DeliveryScope>) -> Self {
                let mut s = self.unbound_clone();
                s.fence = Some(std::sync::Arc::new(fence));
                s.scope = scope.map(std::sync::Arc::new);
                s
            }

            async fn join_round(
                &self,
                worker: &WorkerInfo,
                kind: &str,
                units: &[UnitSpec],
                lease_ms: i64,
            ) -> Result<Joined, StoreError> {
                let fail = self.fail("joining a round of work");
                let mut db = self.write_tx().await?;
                Self::lock_rounds(&mut db).await.map_err(&fail)?;
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT id, config_hash FROM work_rounds WHERE finished_ms IS NULL AND kind = ",
                );
                q.push_bind(kind.to_owned()).push(" ORDER BY id DESC LIMIT 1");
                let open = match q.build().fetch_optional(&mut *db).await.map_err(&fail)? {
                    Some(r) => Some((r.try_get::<i64, _>(0).map_err(&fail)?, r.try_get::<String, _>(1).map_err(&fail)?)),
                    None => None,
                };
                let mut joined = None;
                if let Some((round, hash)) = open {
                    let mut q = QueryBuilder::<$Db>::new(
                        "SELECT (SELECT COUNT(*) FROM workers WHERE finished_ms IS NULL AND round_id = ",
                    );
                    q.push_bind(round)
                        .push(format!(" AND heartbeat_ms > {NOW_MS} - "))
                        .push_bind(lease_ms)
                        .push(")");
                    let live: i64 = q.build().fetch_one(&mut *db).await.and_then(|r| r.try_get(0)).map_err(&fail)?;
                    if live > 0 && hash != worker.config_hash {
                        let mut q = QueryBuilder::<$Db>::new(
                            "SELECT host, pid FROM workers WHERE finished_ms IS NULL AND round_id = ",
                        );
                        q.push_bind(round).push(" ORDER BY started_ms LIMIT 1");
                        let who = match q.build().fetch_optional(&mut *db).await.map_err(&fail)? {
                            Some(r) => format!(
                                "worker {} pid {}",
                                r.try_get::<String, _>(0).map_err(&fail)?,
                                r.try_get::<i64, _>(1).map_err(&fail)?
                            ),
                            None => "another worker".to_owned(),
                        };
                        return Err(StoreError::MixedConfig(format!(
                            "{}: {who} is running {kind} round {round} with another configuration \
                             (config hash {hash}, this worker's {}): every worker sharing a database must run \
                             the same configuration file and --source selection; wait for the round to finish \
                             or start this worker with the same configuration",
                            self.name, worker.config_hash
                        )));
                    }
                    if live > 0 {
                        joined = Some(Joined { round, created: false });
                    } else {
                        let mut q = QueryBuilder::<$Db>::new(format!(
                            "UPDATE work_rounds SET outcome = 'abandoned', finished_ms = {NOW_MS} WHERE id = "
                        ));
                        q.push_bind(round);
                        q.build().execute(&mut *db).await.map_err(&fail)?;
                    }
                }
                let joined = match joined {
                    Some(j) => j,
                    None => {
                        let mut q = QueryBuilder::<$Db>::new("INSERT INTO work_rounds (kind, config_hash, started_ms) VALUES (");
                        q.push_bind(kind.to_owned())
                            .push(", ")
                            .push_bind(worker.config_hash.clone())
                            .push(format!(", {NOW_MS}) RETURNING id"));
                        let round: i64 =
                            q.build().fetch_one(&mut *db).await.and_then(|r| r.try_get(0)).map_err(&fail)?;
                        for chunk in units.chunks(CHUNK) {
                            let mut q = QueryBuilder::<$Db>::new("INSERT INTO work_units (round_id, unit, phase) ");
                            q.push_values(chunk, |mut b, u| {
                                b.push_bind(round).push_bind(u.unit.clone()).push_bind(u.phase.number());
                            });
                            q.build().execute(&mut *db).await.map_err(&fail)?;
                        }
                        if units.is_empty() {
                            let mut q = QueryBuilder::<$Db>::new(format!(
                                "UPDATE work_rounds SET outcome = 'done', finished_ms = {NOW_MS} WHERE id = "
                            ));
                            q.push_bind(round);
                            q.build().execute(&mut *db).await.map_err(&fail)?;
                        }
                        Joined { round, created: true }
                    }
                };
                let mut q = QueryBuilder::<$Db>::new(
                    "INSERT INTO workers (id, host, pid, node, config_hash, round_id, started_ms, heartbeat_ms) VALUES (",
                );
                q.push_bind(worker.id.clone())
                    .push(", ")
                    .push_bind(worker.host.clone())
                    .push(", ")
                    .push_bind(worker.pid)
                    .push(", ")
                    .push_bind(worker.node.clone())
                    .push(", ")
                    .push_bind(worker.config_hash.clone())
                    .push(", ")
                    .push_bind(joined.round)
                    .push(format!(", {NOW_MS}, {NOW_MS}) ON CONFLICT (id) DO UPDATE SET round_id = excluded.round_id, heartbeat_ms = excluded.heartbeat_ms"));
                q.build().execute(&mut *db).await.map_err(&fail)?;
                db.commit().await.map_err(&fail)?;
                Ok(joined)
            }

            async fn begin_worker_run(&self, kind: RunKind, worker: &str) -> Result<RunId, StoreError> {
                let fail = self.fail("starting a run");
                // Runs still marked running whose worker is gone (or that
                // belonged to a worker at all and it finished) were cut short.
                let mut q = QueryBuilder::<$Db>::new(
                    "UPDATE runs SET outcome = 'interrupted' WHERE outcome = 'running' AND worker IS NOT NULL \
                     AND worker NOT IN (SELECT id FROM workers WHERE finished_ms IS NULL AND heartbeat_ms > ",
                );
                q.push(NOW_MS).push(" - ").push_bind(WORKER_GONE_MS).push(")");
                q.build().execute(&self.pool).await.map_err(&fail)?;
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO runs (kind, started_at, worker) VALUES (");
                q.push_bind(kind.as_str())
                    .push(", ")
                    .push_bind(instant(Utc::now()))
                    .push(", ")
                    .push_bind(worker.to_owned())
                    .push(") RETURNING id");
                q.build().fetch_one(&self.pool).await.and_then(|r| r.try_get::<i64, _>(0)).map_err(&fail)
            }

            async fn claim_unit(
                &self,
                round: i64,
                phase: Phase,
                owner: &str,
                lease_ms: i64,
            ) -> Result<Option<crate::leases::Claimed>, StoreError> {
                let fail = self.fail("claiming a unit of work");
                let mut db = self.write_tx().await?;
                let mut q = QueryBuilder::<$Db>::new("UPDATE work_units SET owner = ");
                q.push_bind(owner.to_owned())
                    .push(format!(", expires_ms = {NOW_MS} + "))
                    .push_bind(lease_ms)
                    .push(format!(", claimed_ms = {NOW_MS}, heartbeat_ms = {NOW_MS}, attempts = attempts + 1 WHERE round_id = "))
                    .push_bind(round)
                    .push(" AND unit = (SELECT unit FROM work_units WHERE round_id = ")
                    .push_bind(round)
                    .push(" AND phase = ")
                    .push_bind(phase.number())
                    .push(format!(
                        " AND done_ms IS NULL AND (owner IS NULL OR expires_ms <= {NOW_MS}) \
                         ORDER BY attempts, unit LIMIT 1{SKIP_LOCKED}) RETURNING unit, attempts"
                    ));
                let row = q.build().fetch_optional(&mut *db).await.map_err(&fail)?;
                db.commit().await.map_err(&fail)?;
                match row {
                    None => Ok(None),
                    Some(r) => Ok(Some(crate::leases::Claimed {
                        unit: r.try_get(0).map_err(&fail)?,
                        attempts: r.try_get(1).map_err(&fail)?,
                    })),
                }
            }

            async fn open_units(&self, round: i64, phase: Phase) -> Result<i64, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("SELECT COUNT(*) FROM work_units WHERE done_ms IS NULL AND round_id = ");
                q.push_bind(round).push(" AND phase <= ").push_bind(phase.number());
                q.build().fetch_one(&self.pool).await.and_then(|r| r.try_get(0)).map_err(self.fail("reading units of work"))
            }

            async fn heartbeat(&self, owner: &str, held: Option<(i64, &str)>, lease_ms: i64) -> Result<u64, StoreError> {
                let fail = self.fail("renewing leases");
                let mut renewed = 0;
                if let Some((round, unit)) = held {
                    let mut q = QueryBuilder::<$Db>::new(format!("UPDATE work_units SET expires_ms = {NOW_MS} + "));
                    q.push_bind(lease_ms)
                        .push(format!(", heartbeat_ms = {NOW_MS} WHERE done_ms IS NULL AND owner = "))
                        .push_bind(owner.to_owned())
                        .push(" AND round_id = ")
                        .push_bind(round)
                        .push(" AND unit = ")
                        .push_bind(unit.to_owned());
                    renewed = q.build().execute(&self.pool).await.map_err(&fail)?.rows_affected();
                }
                let mut q = QueryBuilder::<$Db>::new(format!("UPDATE workers SET heartbeat_ms = {NOW_MS} WHERE id = "));
                q.push_bind(owner.to_owned());
                q.build().execute(&self.pool).await.map_err(&fail)?;
                Ok(renewed)
            }

            async fn finish_unit(&self, fence: &Fence, result: &str, error: Option<&str>) -> Result<(), StoreError> {
                let fail = self.fail("finishing a unit of work");
                let mut db = self.write_tx().await?;
                let mut q = QueryBuilder::<$Db>::new(format!("UPDATE work_units SET done_ms = {NOW_MS}, result = "));
                q.push_bind(result.to_owned())
                    .push(", error = ")
                    .push_bind(error.map(str::to_owned))
                    .push(" WHERE round_id = ")
                    .push_bind(fence.round)
                    .push(" AND unit = ")
                    .push_bind(fence.unit.clone())
                    .push(" AND owner = ")
                    .push_bind(fence.owner.clone())
                    .push(format!(" AND done_ms IS NULL AND expires_ms > {NOW_MS}"));
                if q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected() != 1 {
                    return Err(StoreError::LeaseLost { unit: fence.unit.clone(), owner: fence.owner.clone() });
                }
                let mut q = QueryBuilder::<$Db>::new(format!(
                    "UPDATE work_rounds SET outcome = 'done', finished_ms = {NOW_MS} WHERE finished_ms IS NULL AND id = "
                ));
                q.push_bind(fence.round)
                    .push(" AND NOT EXISTS (SELECT 1 FROM work_units WHERE done_ms IS NULL AND round_id = ")
                    .push_bind(fence.round)
                    .push(")");
                q.build().execute(&mut *db).await.map_err(&fail)?;
                db.commit().await.map_err(&fail)
            }

            async fn release_unit(&self, fence: &Fence, error: &str) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new("UPDATE work_units SET owner = NULL, expires_ms = NULL, error = ");
                q.push_bind(error.to_owned())
                    .push(" WHERE done_ms IS NULL AND round_id = ")
                    .push_bind(fence.round)
                    .push(" AND unit = ")
                    .push_bind(fence.unit.clone())
                    .push(" AND owner = ")
                    .push_bind(fence.owner.clone());
                q.build().execute(&self.pool).await.map_err(self.fail("releasing a unit of work"))?;
                Ok(())
            }

            async fn unit_results(
                &self,
                round: i64,
                phase: Phase,
            ) -> Result<Vec<(String, Option<String>, Option<String>)>, StoreError> {
                let fail = self.fail("reading units of work");
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT unit, result, error FROM work_units WHERE done_ms IS NOT NULL AND round_id = ",
                );
                q.push_bind(round).push(" AND phase = ").push_bind(phase.number()).push(" ORDER BY unit");
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0).map_err(&fail)?, r.try_get(1).map_err(&fail)?, r.try_get(2).map_err(&fail)?)))
                    .collect()
            }

            async fn lease_holders(&self, round: Option<i64>, me: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
                let fail = self.fail("reading leases");
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT w.id, w.node, w.pid FROM workers w WHERE w.finished_ms IS NULL AND w.id <> ",
                );
                q.push_bind(me.to_owned());
                if let Some(round) = round {
                    q.push(" AND w.round_id = ").push_bind(round);
                }
                let rows = q.build().fetch_all(&self.pool).await.map_err(&fail)?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0).map_err(&fail)?, r.try_get(1).map_err(&fail)?, r.try_get(2).map_err(&fail)?)))
                    .collect()
            }

            async fn expire_worker(&self, worker: &str) -> Result<u64, StoreError> {
                let fail = self.fail("expiring a dead worker's leases");
                let mut db = self.write_tx().await?;
                let mut q = QueryBuilder::<$Db>::new(format!("UPDATE work_units SET expires_ms = {NOW_MS} WHERE done_ms IS NULL AND owner = "));
                q.push_bind(worker.to_owned());
                let expired = q.build().execute(&mut *db).await.map_err(&fail)?.rows_affected();
                let mut q = QueryBuilder::<$Db>::new(format!(
                    "UPDATE workers SET finished_ms = {NOW_MS}, outcome = 'gone' WHERE finished_ms IS NULL AND id = "
                ));
                q.push_bind(worker.to_owned());
                q.build().execute(&mut *db).await.map_err(&fail)?;
                db.commit().await.map_err(&fail)?;
                Ok(expired)
            }

            async fn finish_worker(&self, worker: &str, outcome: &str) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new(format!("UPDATE workers SET finished_ms = {NOW_MS}, outcome = "));
                q.push_bind(outcome.to_owned()).push(" WHERE id = ").push_bind(worker.to_owned());
                q.build().execute(&self.pool).await.map_err(self.fail("recording a worker's end"))?;
                Ok(())
            }

            async fn coordination(&self) -> Result<CoordinationReport, StoreError> {
                let fail = self.fail("reading workers and leases");
                let mut report = CoordinationReport::default();
                let round = sqlx::query(&format!(
                    "SELECT id, {NOW_MS} - started_ms, outcome, \
                     (SELECT COUNT(*) FROM work_units u WHERE u.round_id = r.id AND u.done_ms IS NOT NULL), \
                     (SELECT COUNT(*) FROM work_units u WHERE u.round_id = r.id) \
                     FROM work_rounds r ORDER BY id DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await
                .map_err(&fail)?;
                if let Some(r) = round {
                    let id: i64 = r.try_get(0).map_err(&fail)?;
                    report.round = Some(RoundRow {
                        id,
                        age_ms: r.try_get(1).map_err(&fail)?,
                        outcome: r.try_get(2).map_err(&fail)?,
                        done: r.try_get(3).map_err(&fail)?,
                        units: r.try_get(4).map_err(&fail)?,
                    });
                    let mut q = QueryBuilder::<$Db>::new(format!(
                        "SELECT unit, phase, owner, {NOW_MS} - claimed_ms, expires_ms - {NOW_MS}, {NOW_MS} - heartbeat_ms, \
                         attempts, error FROM work_units WHERE done_ms IS NULL AND round_id = "
                    ));
                    q.push_bind(id).push(" ORDER BY phase, unit LIMIT 200");
                    for r in q.build().fetch_all(&self.pool).await.map_err(&fail)? {
                        let owner: Option<String> = r.try_get(2).map_err(&fail)?;
                        let held = owner.is_some();
                        let when = |i: usize| -> Result<Option<i64>, StoreError> {
                            let v: Option<i64> = r.try_get(i).map_err(&fail)?;
                            Ok(v.filter(|_| held))
                        };
                        report.open_units.push(LeaseRow {
                            round: id,
                            unit: r.try_get(0).map_err(&fail)?,
                            phase: r.try_get(1).map_err(&fail)?,
                            held_ms: when(3)?,
                            expires_in_ms: when(4)?,
                            heartbeat_age_ms: when(5)?,
                            owner,
                            attempts: r.try_get(6).map_err(&fail)?,
                            error: r.try_get(7).map_err(&fail)?,
                        });
                    }
                }
                let rows = sqlx::query(&format!(
                    "SELECT id, host, pid, round_id, {NOW_MS} - heartbeat_ms, outcome FROM workers \
                     WHERE finished_ms IS NULL OR heartbeat_ms > {NOW_MS} - 3600000 ORDER BY started_ms DESC LIMIT 100"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
                for r in rows {
                    report.workers.push(WorkerRow {
                        id: r.try_get(0).map_err(&fail)?,
                        host: r.try_get(1).map_err(&fail)?,
                        pid: r.try_get(2).map_err(&fail)?,
                        round: r.try_get(3).map_err(&fail)?,
                        heartbeat_age_ms: r.try_get(4).map_err(&fail)?,
                        outcome: r.try_get(5).map_err(&fail)?,
                    });
                }
                Ok(report)
            }
        }
    };
}

pub(crate) use leases_impl;
