//! Trupocket sink (seed 000): a Bearer PAT, one household, detailed-tracking
//! accounts and categories, transactions with **absolute amounts in integer
//! cents** whose direction is the `cashflow` (`expense` for debits, `income`
//! for credits), `date` in **Unix seconds** of the booking date (00:00 UTC),
//! `isCleared` = posted, the payee by name (merchant, else description) and
//! the description as memo, followed by the delivery's idempotency marker as
//! a hashtag (`#bp…`, the document's own tagging mechanism). Reconciliation
//! finds a row by that hashtag with `GET …/transactions?hashtags=`; a row
//! without our marker (the user's own entry) is never taken for ours.
//!
//! Accounts come from `[sinks.accounts]`, else one bankpipe created earlier
//! (remembered in the store), else — with `create_accounts = true` — a new
//! `chkg`/`svgs`/`cc` account; otherwise the source account is skipped with
//! one notice per run. Categories are listed once per run and created only
//! with `create_categories = true`, else `fallback_category` is used. An
//! amount in another currency than the household's is refused, never
//! converted. `plan-limit-exceeded` stops the sink for the run.

pub(crate) mod payload;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bankpipe_config::{SinkConfig, TrupocketConfig};
use bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps;
use bankpipe_http::{ApiErrorBody, Credentials, Endpoint, HttpClient, HttpError, Method};
use bankpipe_model::{Account, Currency, Transaction};
use bankpipe_store::{DeliveryLedger, TransactionStore};
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::sink::{Finding, Plan, Sink, SinkError, SinkRequest};

/// The Trupocket sink of one `[[sinks]]` entry.
pub struct TrupocketSink<'a, S: DeliveryLedger + TransactionStore> {
    name: String,
    endpoint: Endpoint,
    household: String,
    mapping: BTreeMap<String, String>,
    create_accounts: bool,
    create_categories: bool,
    fallback_category: String,
    currency: Currency,
    maps: &'a SinkCategoryMaps,
    store: &'a S,
    accounts: HashMap<(String, String), Account>,
    categories: BTreeSet<String>,
    resolved: HashMap<(String, String), Option<String>>,
}

impl<'a, S: DeliveryLedger + TransactionStore> TrupocketSink<'a, S> {
    /// Build from config (`tp`, the keys of the `kind = "trupocket"` entry
    /// `config`, its PAT read beforehand by `SinkConfig::resolve_secrets`).
    ///
    /// # Errors
    /// [`SinkError::Config`]: the PAT was not read, or an unusable
    /// `base_url` or `currency`.
    pub fn new(
        config: &SinkConfig,
        tp: &TrupocketConfig,
        maps: &'a SinkCategoryMaps,
        store: &'a S,
        accounts: Vec<Account>,
    ) -> Result<Self, SinkError> {
        let problem = |m: String| SinkError::Config { sink: config.name.clone(), message: m };
        let token = crate::sink::credential(&config.name, "token_env", &tp.token_env)?;
        let endpoint = Endpoint::new(&config.base_url, Credentials::Bearer(token))
            .map_err(|e| problem(format!("base_url: {e}")))?;
        let currency = Currency::from_code(&tp.currency).map_err(|e| problem(format!("currency: {e}")))?;
        Ok(TrupocketSink {
            name: config.name.clone(),
            endpoint,
            household: tp.household_id.clone(),
            mapping: config.accounts.clone(),
            create_accounts: tp.create_accounts,
            create_categories: tp.create_categories,
            fallback_category: tp.fallback_category.clone(),
            currency,
            maps,
            store,
            accounts: accounts.into_iter().map(|a| ((a.source.to_string(), a.source_account_id.clone()), a)).collect(),
            categories: BTreeSet::new(),
            resolved: HashMap::new(),
        })
    }

    fn path(&self, rest: &str) -> String {
        format!("households/{}/detailed-tracking/{rest}", self.household)
    }

    fn http(&self, e: HttpError) -> SinkError {
        SinkError::Http { sink: self.name.clone(), source: e }
    }

    async fn post(&self, client: &HttpClient, path: &str, body: &Value) -> Result<Value, HttpError> {
        let url = self.endpoint.url(path)?;
        let r = client.send(&self.endpoint, Method::POST, &url, Some(body)).await?;
        serde_json::from_slice(&r.body).map_err(|e| HttpError::Transport {
            method: "POST".into(),
            url: url.to_string(),
            cause: format!("unreadable response: {e}"),
        })
    }

    async fn get(&self, client: &HttpClient, path: &str) -> Result<Value, HttpError> {
        let url = self.endpoint.url(path)?;
        let r = client.get(&self.endpoint, &url).await?;
        serde_json::from_slice(&r.body).map_err(|e| HttpError::Transport {
            method: "GET".into(),
            url: url.to_string(),
            cause: format!("unreadable response: {e}"),
        })
    }

    /// The sink account of a source account: config, remembered, created, or none.
    async fn account_for(
        &mut self,
        client: &HttpClient,
        tx: &Transaction,
        may_create: bool,
    ) -> Result<Option<String>, SinkError> {
        let key = (tx.source.to_string(), tx.source_account_id.clone());
        match self.resolved.get(&key) {
            Some(Some(r)) => return Ok(Some(r.clone())),
            Some(None) if !may_create || !self.create_accounts => return Ok(None),
            _ => {}
        }
        let mut remote = crate::sink::mapped_account(&self.mapping, &tx.source, &tx.source_account_id).cloned();
        if remote.is_none() {
            remote = self
                .store
                .sink_account(&self.name, &tx.source, &tx.source_account_id)
                .await
                .map_err(|e| SinkError::Store { sink: self.name.clone(), source: e })?;
        }
        if remote.is_none() && self.create_accounts && may_create {
            let account = self.accounts.get(&key);
            let body = payload::new_account(&tx.source, &tx.source_account_id, account);
            let created = self.post(client, &self.path("accounts"), &body).await.map_err(|e| self.http(e))?;
            let id = created["accountID"].as_str().ok_or_else(|| SinkError::Protocol {
                sink: self.name.clone(),
                message: format!("account creation answered without accountID: {created}"),
            })?;
            self.store
                .set_sink_account(&self.name, &tx.source, &tx.source_account_id, id)
                .await
                .map_err(|e| SinkError::Store { sink: self.name.clone(), source: e })?;
            remote = Some(id.to_owned());
        }
        self.resolved.insert(key, remote.clone());
        Ok(remote)
    }

    /// Read the household's category names.
    async fn refresh_categories(&mut self, client: &HttpClient) -> Result<(), SinkError> {
        let listed = self.get(client, &self.path("categories")).await.map_err(|e| self.http(e))?;
        self.categories = listed["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        Ok(())
    }

    /// Create the category `name` (the plan found it missing and
    /// `create_categories` is true) and list it.
    async fn create_category(&mut self, client: &HttpClient, name: &str) -> Result<(), SinkError> {
        let created = self.post(client, &self.path("categories"), &json!({"name": name, "budgetAmount": 0})).await;
        if let Err(e) = created {
            // Another worker (or the user) may have created it since
            // the list was read: refused as a duplicate, it is there.
            // The list decides, not the error's wording.
            if !e.status().is_some_and(|s| (400..500).contains(&s)) {
                return Err(self.http(e));
            }
            self.refresh_categories(client).await?;
            if !self.categories.contains(name) {
                return Err(self.http(e));
            }
        }
        self.categories.insert(name.to_owned());
        Ok(())
    }

    /// The other leg of a transfer `tx`, as far as this household is
    /// concerned: in an account it maps, same currency, opposite sign
    /// (read from the store; for a credit leg, with its debit leg's delivery).
    async fn transfer_of(&self, tx: &Transaction) -> Result<plan::Transfer, SinkError> {
        let store_err = |e| SinkError::Store { sink: self.name.clone(), source: e };
        let Some(other) = self.store.counterpart(tx).await.map_err(store_err)? else {
            return Ok(plan::Transfer::None);
        };
        let other_account = match &other {
            o if o.amount.currency() == tx.amount.currency() && o.amount.is_negative() != tx.amount.is_negative() => {
                crate::sink::mapped_account(&self.mapping, &o.source, &o.source_account_id).cloned()
            }
            _ => None,
        };
        let Some(other_account) = other_account else { return Ok(plan::Transfer::None) };
        let other_id = other.id.to_string();
        if tx.amount.is_negative() {
            return Ok(plan::Transfer::Debit { credit: other_id, to: other_account });
        }
        let debit = self.store.delivery(&self.name, &other_id).await.map_err(store_err)?;
        // Covered only by a transfer row that names this leg.
        let names_this = |d: &bankpipe_store::DeliveryRow| {
            d.request
                .as_deref()
                .and_then(|r| serde_json::from_str::<SinkRequest>(r).ok())
                .is_some_and(|r| r.covers.as_deref() == Some(tx.id.to_string().as_str()))
        };
        let delivered = match debit {
            Some(d) if d.state == bankpipe_store::DeliveryState::Delivered && names_this(&d) => {
                plan::DebitLeg::AsTransfer { remote_id: d.remote_id }
            }
            Some(d) if d.state == bankpipe_store::DeliveryState::Delivered => plan::DebitLeg::AsItsOwnRow,
            _ => plan::DebitLeg::NotYet,
        };
        Ok(plan::Transfer::Credit { debit: other_id, delivered })
    }

    /// What the configuration fixes for the plan.
    fn settings(&self) -> plan::Settings<'_> {
        plan::Settings {
            household: &self.household,
            currency: self.currency,
            create_categories: self.create_categories,
            fallback_category: &self.fallback_category,
            maps: self.maps,
        }
    }
}

impl<S: DeliveryLedger + TransactionStore> Sink for TrupocketSink<'_, S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prepare(&mut self, client: &HttpClient) -> Result<(), SinkError> {
        self.refresh_categories(client).await
    }

    async fn plan(&mut self, client: &HttpClient, tx: &Transaction, marker: &str) -> Result<Plan, SinkError> {
        // An unmapped account stays queued whatever its currency (the user
        // may still map it); bankpipe creates one only for the household's
        // currency, whose rows it can deliver.
        let creatable = tx.amount.currency() == self.currency;
        let account = self.account_for(client, tx, creatable).await?;
        let notice = format!(
            "{}: source account {}:{} has no Trupocket account in [sinks.accounts] (and create_accounts is false); its transactions stay queued",
            self.name, tx.source, tx.source_account_id
        );
        // The pure plan decides; the facts it asks for are read here (a
        // transfer's other leg from the store, a category created on the
        // sink), each at most once, then it decides again.
        let mut transfer = None;
        loop {
            let facts = plan::Facts {
                account: account.as_deref().ok_or(notice.as_str()),
                transfer: transfer.as_ref(),
                categories: plan::Categories::Listed(&self.categories),
            };
            match plan::plan(&self.settings(), &facts, tx, marker) {
                Ok(plan) => return Ok(plan),
                Err(plan::Needs::Transfer) => transfer = Some(self.transfer_of(tx).await?),
                Err(plan::Needs::Category(name)) => self.create_category(client, &name).await?,
            }
        }
    }

    async fn send(&mut self, client: &HttpClient, request: &SinkRequest) -> Result<String, HttpError> {
        let url = self.endpoint.url(&request.path)?;
        let r = client.send(&self.endpoint, Method::POST, &url, Some(&request.body)).await?;
        // A 2xx whose body cannot be read may well have created the row.
        let ambiguous = |cause: String| HttpError::Ambiguous { method: "POST".into(), url: url.to_string(), cause };
        let created: Value = serde_json::from_slice(&r.body)
            .map_err(|e| ambiguous(format!("HTTP {} with an unreadable body: {e}", r.status)))?;
        created["transactionID"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ambiguous(format!("created without a transactionID in the response: {created}")))
    }

    async fn find(
        &mut self,
        client: &HttpClient,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
        markers: &[&str],
    ) -> Result<HashMap<String, String>, SinkError> {
        let wanted: BTreeSet<&str> = markers.iter().copied().collect();
        let mut found = HashMap::new();
        for chunk in markers.chunks(40) {
            let path = format!(
                "{}?hashtags={}&accounts={account}&fromDate={from}&toDate={to}",
                self.path("transactions"),
                chunk.join(",")
            );
            let listed = self.get(client, &path).await.map_err(|e| self.http(e))?;
            let rows = listed["transactions"].as_array().ok_or_else(|| SinkError::Protocol {
                sink: self.name.clone(),
                message: format!("GET {path}: the answer has no transactions list"),
            })?;
            for row in rows {
                let (id, carried) = payload::listed_markers(row).map_err(|m| SinkError::Protocol {
                    sink: self.name.clone(),
                    message: format!("GET {path}: {m}"),
                })?;
                for m in carried.into_iter().filter(|m| wanted.contains(m.as_str())) {
                    found.entry(m).or_insert_with(|| id.clone());
                }
            }
        }
        Ok(found)
    }

    async fn check(&mut self, client: &HttpClient) -> Result<Vec<Finding>, SinkError> {
        let mut found = Vec::new();
        let me = self.get(client, "users/who-am-i").await.map_err(|e| self.http(e))?;
        found.push(Finding::ok(format!("token accepted (plan {})", me["planID"].as_str().unwrap_or("unknown"))));
        match self.get(client, &format!("households/{}", self.household)).await {
            Ok(_) => found.push(Finding::ok(format!("household {} exists", self.household))),
            Err(e) if e.status() == Some(404) => {
                found.push(Finding::problem(format!("household_id {} does not exist for this token", self.household)));
                return Ok(found);
            }
            Err(e) => return Err(self.http(e)),
        }
        for (key, account) in self.mapping.clone() {
            match self.get(client, &self.path(&format!("accounts/{account}"))).await {
                Ok(_) => found.push(Finding::ok(format!("account {account} (for {key}) exists"))),
                Err(e) if e.status() == Some(404) => found.push(Finding::problem(format!(
                    "[sinks.accounts] {key:?} = {account:?}: no such account in household {}",
                    self.household
                ))),
                Err(e) => return Err(self.http(e)),
            }
        }
        self.prepare(client).await?;
        if !self.create_categories && !self.categories.contains(&self.fallback_category) {
            found.push(Finding::problem(format!(
                "create_categories is false and the fallback category {:?} does not exist: unmatched rows would fail",
                self.fallback_category
            )));
        }
        Ok(found)
    }

    async fn account_done(
        &mut self,
        _client: &HttpClient,
        _account: &str,
        _latest: NaiveDate,
    ) -> Result<(), HttpError> {
        Ok(())
    }

    fn stops_the_run(&self, error: &HttpError) -> Option<String> {
        match error {
            HttpError::Status { body, .. } => match &**body {
                ApiErrorBody::Trupocket { code, message, .. } if code == "plan-limit-exceeded" => {
                    Some(format!("plan-limit-exceeded: {message}; the rest stays queued for the next run"))
                }
                _ => None,
            },
            _ => None,
        }
    }
}
