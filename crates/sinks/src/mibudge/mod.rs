//! mibudge sink (seed 003 and the mibudge facts of seeds/README.md): a JWT
//! from `POST /api/token/` (login field configurable, default `email`),
//! reused for the whole run and renewed only on a 401 (logins share a 100 per
//! hour throttle); `POST /api/v1/transactions/` with a **signed decimal
//! amount** (debits negative, the account currency's digits), `posted_date`,
//! `amount_currency` (the account's currency: without it the server takes
//! the amount as USD and fails with an HTML 500), `posted_date` and
//! `transaction_date` as booking-zone dates, `transaction_type` from the
//! kind, `raw_description` (the description), `description` (the merchant),
//! `pending`, and the delivery's idempotency marker as a `#bp…` hashtag in
//! `memo` (after the source's memo, at most 512 characters); budget splits
//! when `[categories.mibudge]` maps the category (also for rows found by
//! reconciliation); `mark-imported` with the latest posted date after each
//! account's batch.
//!
//! Currencies are read once per run from `GET /api/v1/currencies/`: a
//! transaction in a currency the server does not list, or with more than 2
//! decimals (it stores `numeric(14,2)`), is refused before any request.
//!
//! The server does no dedupe on POST, drops `bank_transaction_id` on
//! create and commits a request its client gave up on, so reconciliation
//! lists the account's rows by `posted_date` (a day wider on each side; the
//! server renders dates as datetimes in its own offset), follows every page
//! and looks for the delivery's marker in `memo`. It sends no
//! `X-RateLimit-*` headers, only 429 + `Retry-After`, which the HTTP layer
//! honours; some faults are HTML 500 pages, which it reads as text.

pub(crate) mod payload;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bankpipe_config::{MibudgeConfig, SinkConfig};
use bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps;
use bankpipe_http::secrecy::ExposeSecret;
use bankpipe_http::{Credentials, Endpoint, HttpClient, HttpError, HttpResponse, Method, SecretString, Url};
use bankpipe_model::{Currency, Transaction};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::sink::{Finding, Plan, Sink, SinkError, SinkRequest};

/// The mibudge sink of one `[[sinks]]` entry.
pub struct MibudgeSink<'a> {
    name: String,
    api: Endpoint,
    anonymous: Endpoint,
    login_field: String,
    login: SecretString,
    password: SecretString,
    mapping: BTreeMap<String, String>,
    maps: &'a SinkCategoryMaps,
    currencies: HashMap<String, Result<Option<Currency>, String>>,
    budgets: HashMap<(String, String), String>,
    /// Currency codes the server accepts (`GET /api/v1/currencies/`).
    accepted: BTreeSet<String>,
    zone: Tz,
    logins: u32,
}

/// Pages a listing may have before bankpipe gives up on it (500 rows each).
const MAX_PAGES: usize = 10_000;

impl<'a> MibudgeSink<'a> {
    /// Build from config (`mb`, the keys of the `kind = "mibudge"` entry
    /// `config`, its login and password read beforehand by
    /// `SinkConfig::resolve_secrets`).
    ///
    /// # Errors
    /// [`SinkError::Config`]: a credential was not read, or an unusable
    /// `base_url`.
    /// `zone` is the booking zone (`sync.timezone`) of `transaction_date`.
    pub fn new(
        config: &SinkConfig,
        mb: &MibudgeConfig,
        maps: &'a SinkCategoryMaps,
        zone: Tz,
    ) -> Result<Self, SinkError> {
        let problem = |m: String| SinkError::Config { sink: config.name.clone(), message: m };
        let anonymous =
            Endpoint::new(&config.base_url, Credentials::None).map_err(|e| problem(format!("base_url: {e}")))?;
        Ok(MibudgeSink {
            name: config.name.clone(),
            api: anonymous.clone(),
            anonymous,
            login_field: mb.login_field.clone(),
            login: crate::sink::credential(&config.name, "login_env", &mb.login_env)?,
            password: crate::sink::credential(&config.name, "password_env", &mb.password_env)?,
            mapping: config.accounts.clone(),
            maps,
            currencies: HashMap::new(),
            budgets: HashMap::new(),
            accepted: BTreeSet::new(),
            zone,
            logins: 0,
        })
    }

    /// Logins made in this run (a token is reused until a 401).
    pub fn logins(&self) -> u32 {
        self.logins
    }

    async fn log_in(&mut self, client: &HttpClient) -> Result<(), HttpError> {
        let url = self.anonymous.url("api/token/")?;
        let body =
            json!({ self.login_field.clone(): self.login.expose_secret(), "password": self.password.expose_secret() });
        // A login creates nothing: safe to retry through 5xx and timeouts.
        let r = client.send_idempotent(&self.anonymous, Method::POST, &url, Some(&body)).await?;
        let access =
            serde_json::from_slice::<Value>(&r.body).ok().and_then(|v| v["access"].as_str().map(str::to_owned));
        let access = access.ok_or_else(|| HttpError::Transport {
            method: "POST".into(),
            url: url.to_string(),
            cause: "login answered without an access token".into(),
        })?;
        self.api.set_credentials(Credentials::Bearer(SecretString::from(access)));
        self.logins += 1;
        Ok(())
    }

    /// A request with the current token; on 401, log in again once and retry.
    async fn call(
        &mut self,
        client: &HttpClient,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<HttpResponse, HttpError> {
        match client.send(&self.api, method.clone(), url, body).await {
            Err(e) if e.status() == Some(401) => {
                tracing::info!(sink = %self.name, "access token expired; logging in again");
                self.log_in(client).await?;
                client.send(&self.api, method, url, body).await
            }
            other => other,
        }
    }

    async fn get_json(&mut self, client: &HttpClient, url: &Url) -> Result<Value, HttpError> {
        let r = self.call(client, Method::GET, url, None).await?;
        serde_json::from_slice(&r.body).map_err(|e| HttpError::Transport {
            method: "GET".into(),
            url: url.to_string(),
            cause: format!("unreadable response: {e}"),
        })
    }

    /// Every row of a DRF list (`results`, following `next`), at most
    /// [`MAX_PAGES`] pages; a `next` seen before is an error, not a loop.
    async fn list_all(&mut self, client: &HttpClient, first: Url) -> Result<Vec<Value>, SinkError> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut url = Some(first);
        while let Some(u) = url {
            if !seen.insert(u.to_string()) || seen.len() > MAX_PAGES {
                return Err(self.protocol(format!(
                    "GET {u}: the listing's next link repeats or exceeds {MAX_PAGES} pages; giving up on it"
                )));
            }
            let page = self.get_json(client, &u).await.map_err(|e| self.http(e))?;
            let rows = page["results"]
                .as_array()
                .ok_or_else(|| self.protocol(format!("GET {u}: the answer has no results list")))?;
            out.extend(rows.iter().cloned());
            url = match &page["next"] {
                Value::Null => None,
                Value::String(n) => Some(u.join(n).map_err(|e| self.http(HttpError::Url(e.to_string())))?),
                other => return Err(self.protocol(format!("GET {u}: unreadable next link {other}"))),
            };
        }
        Ok(out)
    }

    fn protocol(&self, message: String) -> SinkError {
        SinkError::Protocol { sink: self.name.clone(), message }
    }

    /// The currency of a mapped bank account, read once per run; `Err`
    /// with a reason when the server has no such account (a mapping to
    /// fix: the transaction is recorded failed, retryable).
    async fn currency_of(
        &mut self,
        client: &HttpClient,
        account: &str,
    ) -> Result<Result<Option<Currency>, String>, SinkError> {
        if let Some(c) = self.currencies.get(account) {
            return Ok(c.clone());
        }
        let url = self.api.url(&format!("api/v1/bank-accounts/{account}/")).map_err(|e| self.http(e))?;
        let c = match self.get_json(client, &url).await {
            Ok(v) => Ok(v["currency"].as_str().and_then(|c| Currency::from_code(c).ok())),
            Err(e) if e.status() == Some(404) => Err(format!(
                "mibudge bank account {account} does not exist (check [sinks.accounts] of sink {})",
                self.name
            )),
            Err(e) => return Err(self.http(e)),
        };
        self.currencies.insert(account.to_owned(), c.clone());
        Ok(c)
    }

    fn http(&self, e: HttpError) -> SinkError {
        SinkError::Http { sink: self.name.clone(), source: e }
    }
}

impl Sink for MibudgeSink<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prepare(&mut self, client: &HttpClient) -> Result<(), SinkError> {
        self.log_in(client).await.map_err(|e| self.http(e))?;
        let url = self.api.url("api/v1/currencies/").map_err(|e| self.http(e))?;
        let listed = self.get_json(client, &url).await.map_err(|e| self.http(e))?;
        self.accepted = currency_codes(&listed)
            .ok_or_else(|| self.protocol(format!("GET {url}: unreadable currency list {listed}")))?;
        if self.maps.has_mibudge_budgets() {
            let url = self.api.url("api/v1/budgets/?page_size=500").map_err(|e| self.http(e))?;
            for b in self.list_all(client, url).await? {
                if let (Some(account), Some(name), Some(id)) =
                    (b["bank_account"].as_str(), b["name"].as_str(), b["id"].as_str())
                {
                    self.budgets.insert((account.to_owned(), name.to_owned()), id.to_owned());
                }
            }
        }
        Ok(())
    }

    async fn plan(&mut self, client: &HttpClient, tx: &Transaction, marker: &str) -> Result<Plan, SinkError> {
        let account = crate::sink::mapped_account(&self.mapping, &tx.source, &tx.source_account_id).cloned();
        let notice = format!(
            "{}: source account {}:{} has no mibudge bank account in [sinks.accounts]; its transactions stay queued",
            self.name, tx.source, tx.source_account_id
        );
        let budget = account.as_ref().and_then(|account| {
            let name = self.maps.mibudge(tx.category.as_deref()?)?;
            self.budgets.get(&(account.clone(), name.to_owned())).cloned()
        });
        // The pure plan decides; the bank account's currency is read (once
        // per run and account) only when it asks for it.
        let mut account_currency = None;
        loop {
            let facts = plan::Facts {
                account: account.as_deref().ok_or(notice.as_str()),
                accepted: Some(&self.accepted),
                account_currency: account_currency.as_ref(),
                budget: budget.as_deref(),
            };
            match plan::plan(&facts, tx, marker, self.zone) {
                Ok(plan) => return Ok(plan),
                Err(plan::Needs::AccountCurrency(account)) => {
                    account_currency = Some(self.currency_of(client, &account).await?);
                }
            }
        }
    }

    async fn send(&mut self, client: &HttpClient, request: &SinkRequest) -> Result<String, HttpError> {
        let url = self.api.url(&request.path)?;
        let r = self.call(client, Method::POST, &url, Some(&request.body)).await?;
        // A 2xx whose body cannot be read may well have created the row.
        let ambiguous = |cause: String| HttpError::Ambiguous { method: "POST".into(), url: url.to_string(), cause };
        let created: Value = serde_json::from_slice(&r.body)
            .map_err(|e| ambiguous(format!("HTTP {} with an unreadable body: {e}", r.status)))?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ambiguous(format!("created without an id in the response: {created}")))
    }

    fn corrects(&self) -> bool {
        true
    }

    async fn complete(&mut self, client: &HttpClient, request: &SinkRequest, remote_id: &str) -> Result<(), HttpError> {
        if let Some(split) = &request.follow_up {
            let url = self.api.url(&format!("api/v1/transactions/{remote_id}/splits/"))?;
            if let Err(e) = self.call(client, Method::POST, &url, Some(split)).await {
                tracing::warn!(sink = %self.name, transaction = %remote_id, error = %e, "budget split failed; the transaction stays unallocated");
            }
        }
        if let Some(old) = &request.replaces {
            // Only transaction_type, memo and description can change after
            // creation: a correction is create + delete. A row already gone is fine.
            let url = self.api.url(&format!("api/v1/transactions/{old}/"))?;
            match self.call(client, Method::DELETE, &url, None).await {
                Err(e) if e.status() == Some(404) => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    async fn find(
        &mut self,
        client: &HttpClient,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
        markers: &[&str],
    ) -> Result<HashMap<String, String>, SinkError> {
        let url = self
            .api
            .url(&format!(
                "api/v1/transactions/?bank_account={account}&posted_date_from={from}&posted_date_to={to}&page_size=500"
            ))
            .map_err(|e| self.http(e))?;
        let wanted: BTreeSet<&str> = markers.iter().copied().collect();
        let mut found = HashMap::new();
        for row in self.list_all(client, url.clone()).await? {
            let (id, carried) = payload::listed_markers(&row).map_err(|m| self.protocol(format!("GET {url}: {m}")))?;
            for m in carried.into_iter().filter(|m| wanted.contains(m.as_str())) {
                found.entry(m).or_insert_with(|| id.clone());
            }
        }
        Ok(found)
    }

    async fn check(&mut self, client: &HttpClient) -> Result<Vec<Finding>, SinkError> {
        self.prepare(client).await?;
        let mut found = vec![Finding::ok(format!(
            "logged in; the server accepts {}",
            self.accepted.iter().cloned().collect::<Vec<_>>().join(" ")
        ))];
        let budgets: Vec<String> = self.maps.mibudge_budgets().into_iter().map(str::to_owned).collect();
        for (key, account) in self.mapping.clone() {
            match self.currency_of(client, &account).await? {
                Err(reason) => found.push(Finding::problem(format!("[sinks.accounts] {key:?}: {reason}"))),
                Ok(c) => {
                    let c = c.map_or_else(|| "an unknown currency".to_owned(), |c| c.to_string());
                    found.push(Finding::ok(format!("bank account {account} (for {key}) exists, in {c}")));
                    for name in &budgets {
                        if !self.budgets.contains_key(&(account.clone(), name.clone())) {
                            found.push(Finding::problem(format!(
                                "[categories.mibudge] names budget {name:?}, which bank account {account} (for {key}) does not have: those rows stay unallocated"
                            )));
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    async fn account_done(&mut self, client: &HttpClient, account: &str, latest: NaiveDate) -> Result<(), HttpError> {
        let url = self.api.url(&format!("api/v1/bank-accounts/{account}/mark-imported/"))?;
        self.call(client, Method::POST, &url, Some(&json!({"last_posted_through": latest.to_string()})))
            .await
            .map(|_| ())
    }
}

/// The codes of `GET /api/v1/currencies/`: a list (or a DRF page's
/// `results`) of codes or of objects with a `code`.
fn currency_codes(listed: &Value) -> Option<BTreeSet<String>> {
    let rows = listed.as_array().or_else(|| listed["results"].as_array())?;
    rows.iter().map(|c| c.as_str().or_else(|| c["code"].as_str()).map(str::to_owned)).collect()
}
