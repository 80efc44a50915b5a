//! mibudge sink (seed 003 and the mibudge facts of seeds/README.md): a JWT
//! from `POST /api/token/` (login field configurable, default `email`),
//! reused for the whole run and renewed only on a 401 (logins share a 100 per
//! hour throttle); `POST /api/v1/transactions/` with a **signed decimal
//! amount** (debits negative, the account currency's digits), `posted_date`,
//! `transaction_date`, `transaction_type` from the kind, `raw_description`
//! (the description), `description` (the merchant) and `pending`; budget
//! splits when `[categories.mibudge]` maps the category; `mark-imported` with
//! the latest posted date after each account's batch.
//!
//! The server does no dedupe on POST and drops `bank_transaction_id` on
//! create, so reconciliation lists by `posted_date` and matches (posted
//! date, amount, raw description), pairing identical rows by count. It sends
//! no `X-RateLimit-*` headers, only 429 + `Retry-After`, which the HTTP
//! layer honours; some faults are HTML 500 pages, which it reads as text.

pub(crate) mod payload;

use std::collections::{BTreeMap, HashMap};

use bankpipe_config::SinkConfig;
use bankpipe_enrich::categorize::sink_maps::SinkCategoryMaps;
use bankpipe_http::secrecy::ExposeSecret;
use bankpipe_http::{Credentials, Endpoint, HttpClient, HttpError, HttpResponse, Method, SecretString, Url};
use bankpipe_model::{Currency, Transaction};
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::sink::{MatchKey, Plan, Sink, SinkError, SinkRequest};

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
    currencies: HashMap<String, Option<Currency>>,
    budgets: HashMap<(String, String), String>,
    logins: u32,
}

impl<'a> MibudgeSink<'a> {
    /// Build from config; login and password are read from the variables
    /// `login_env` and `password_env` name.
    ///
    /// # Errors
    /// [`SinkError::Config`] naming the missing key or variable.
    pub fn new(config: &SinkConfig, maps: &'a SinkCategoryMaps) -> Result<Self, SinkError> {
        let problem = |m: String| SinkError::Config { sink: config.name.clone(), message: m };
        let secret = |key: &str, var: &Option<String>| -> Result<SecretString, SinkError> {
            let var = var.as_deref().ok_or_else(|| problem(format!("{key} is required")))?;
            std::env::var(var)
                .map(SecretString::from)
                .map_err(|_| problem(format!("environment variable {var} (named by {key}) is not set")))
        };
        let anonymous =
            Endpoint::new(&config.base_url, Credentials::None).map_err(|e| problem(format!("base_url: {e}")))?;
        Ok(MibudgeSink {
            name: config.name.clone(),
            api: anonymous.clone(),
            anonymous,
            login_field: config.login_field.clone(),
            login: secret("login_env", &config.login_env)?,
            password: secret("password_env", &config.password_env)?,
            mapping: config.accounts.clone(),
            maps,
            currencies: HashMap::new(),
            budgets: HashMap::new(),
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

    /// Every page of a DRF list (`results`, following `next`).
    async fn list_all(&mut self, client: &HttpClient, first: Url) -> Result<Vec<Value>, HttpError> {
        let mut out = Vec::new();
        let mut url = Some(first);
        while let Some(u) = url {
            let page = self.get_json(client, &u).await?;
            out.extend(page["results"].as_array().cloned().unwrap_or_default());
            url = page["next"].as_str().map(|n| u.join(n)).transpose().map_err(|e| HttpError::Url(e.to_string()))?;
        }
        Ok(out)
    }

    async fn currency_of(&mut self, client: &HttpClient, account: &str) -> Result<Option<Currency>, SinkError> {
        if let Some(c) = self.currencies.get(account) {
            return Ok(*c);
        }
        let url = self.api.url(&format!("api/v1/bank-accounts/{account}/")).map_err(|e| self.http(e))?;
        let v = self.get_json(client, &url).await.map_err(|e| self.http(e))?;
        let c = v["currency"].as_str().and_then(|c| Currency::from_code(c).ok());
        self.currencies.insert(account.to_owned(), c);
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
        if self.maps.has_mibudge_budgets() {
            let url = self.api.url("api/v1/budgets/?page_size=500").map_err(|e| self.http(e))?;
            for b in self.list_all(client, url).await.map_err(|e| self.http(e))? {
                if let (Some(account), Some(name), Some(id)) =
                    (b["bank_account"].as_str(), b["name"].as_str(), b["id"].as_str())
                {
                    self.budgets.insert((account.to_owned(), name.to_owned()), id.to_owned());
                }
            }
        }
        Ok(())
    }

    async fn plan(&mut self, client: &HttpClient, tx: &Transaction) -> Result<Plan, SinkError> {
        let Some(account) = self.mapping.get(&tx.source_account_id).cloned() else {
            return Ok(Plan::Skip {
                account: format!("{}:{}", tx.source, tx.source_account_id),
                notice: format!(
                    "{}: source account {}:{} has no mibudge bank account in [sinks.accounts]; its transactions stay queued",
                    self.name, tx.source, tx.source_account_id
                ),
            });
        };
        match self.currency_of(client, &account).await? {
            Some(c) if c != tx.amount.currency() => {
                return Ok(Plan::Refuse(format!(
                    "amount in {} but mibudge bank account {account} is in {c}; bankpipe never converts currencies",
                    tx.amount.currency()
                )))
            }
            _ => {}
        }
        let (body, key) = payload::transaction(tx, &account);
        Ok(Plan::Send(SinkRequest { method: Method::POST, path: "api/v1/transactions/".into(), body, key }))
    }

    async fn send(
        &mut self,
        client: &HttpClient,
        tx: &Transaction,
        request: &SinkRequest,
    ) -> Result<String, HttpError> {
        let url = self.api.url(&request.path)?;
        let r = self.call(client, Method::POST, &url, Some(&request.body)).await?;
        let created: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let id = created["id"].as_str().map(str::to_owned).ok_or_else(|| HttpError::Ambiguous {
            method: "POST".into(),
            url: url.to_string(),
            cause: "created without an id in the response".into(),
        })?;
        // Budget split, when the category is mapped; the transaction itself is delivered either way.
        let budget = tx
            .category
            .as_deref()
            .and_then(|c| self.maps.mibudge(c))
            .and_then(|name| self.budgets.get(&(request.key.account.clone(), name.to_owned())).cloned());
        if let Some(budget) = budget {
            let split_url = self.api.url(&format!("api/v1/transactions/{id}/splits/"))?;
            let body = json!({"splits": {budget: tx.amount.abs().to_string()}});
            if let Err(e) = self.call(client, Method::POST, &split_url, Some(&body)).await {
                tracing::warn!(sink = %self.name, transaction = %id, error = %e, "budget split failed; the transaction stays unallocated");
            }
        }
        Ok(id)
    }

    async fn list(
        &mut self,
        client: &HttpClient,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, MatchKey)>, HttpError> {
        let url = self.api.url(&format!(
            "api/v1/transactions/?bank_account={account}&posted_date_from={from}&posted_date_to={to}&page_size=500"
        ))?;
        Ok(self.list_all(client, url).await?.iter().filter_map(payload::listed_key).collect())
    }

    async fn account_done(&mut self, client: &HttpClient, account: &str, latest: NaiveDate) -> Result<(), HttpError> {
        let url = self.api.url(&format!("api/v1/bank-accounts/{account}/mark-imported/"))?;
        self.call(client, Method::POST, &url, Some(&json!({"last_posted_through": latest.to_string()})))
            .await
            .map(|_| ())
    }
}
