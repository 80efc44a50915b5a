//! The configuration schema. Field names are the TOML keys.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::SinkConfig;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[store]`.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[sync]`.
    #[serde(default)]
    pub sync: SyncConfig,
    /// `[[sources]]`.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// `[[sinks]]`: each entry's keys are checked against its kind's
    /// (see [`SinkConfig`]).
    #[serde(default, deserialize_with = "crate::sinks::deserialize_list")]
    pub sinks: Vec<SinkConfig>,
    /// `[[rules]]`: categorization rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// `[categories]`: category data and per-sink maps.
    #[serde(default)]
    pub categories: CategoriesConfig,
    /// `[dedupe]`: pending → posted and cross-source matching.
    #[serde(default)]
    pub dedupe: DedupeSettings,
    /// `[[account_links]]`: the same real account seen through two sources.
    #[serde(default)]
    pub account_links: Vec<AccountLinkConfig>,
}

/// `[dedupe]` (DESIGN §4). Defaults: 7 days, 20%, MCCs 5812 5813 5814 5541 5542, ±2 days.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeSettings {
    /// Days after a pending row within which its posted row may book.
    #[serde(default = "default_pending_days")]
    pub pending_days: i64,
    /// Allowed pending → posted amount change for tip-prone MCCs, percent.
    #[serde(default = "default_tip_tolerance")]
    pub tip_tolerance_percent: i64,
    /// Tip-prone MCCs (restaurants, bars, fuel).
    #[serde(default = "default_tip_mccs")]
    pub tip_prone_mccs: Vec<u16>,
    /// Days apart two linked sources may book the same movement.
    #[serde(default = "default_cross_days")]
    pub cross_source_days: i64,
}

impl Default for DedupeSettings {
    fn default() -> Self {
        DedupeSettings {
            pending_days: default_pending_days(),
            tip_tolerance_percent: default_tip_tolerance(),
            tip_prone_mccs: default_tip_mccs(),
            cross_source_days: default_cross_days(),
        }
    }
}

fn default_pending_days() -> i64 {
    7
}
fn default_tip_tolerance() -> i64 {
    20
}
fn default_tip_mccs() -> Vec<u16> {
    vec![5812, 5813, 5814, 5541, 5542]
}
fn default_cross_days() -> i64 {
    2
}

/// `[[account_links]]`: `accounts = ["SOURCE:ACCOUNT_ID", "SOURCE:ACCOUNT_ID"]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountLinkConfig {
    /// Exactly two `source:account id` references.
    pub accounts: Vec<String>,
}

impl AccountLinkConfig {
    /// The two `(source, account id)` sides, when well-formed.
    pub fn sides(&self) -> Option<((String, String), (String, String))> {
        let split = |s: &String| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned()));
        match self.accounts.as_slice() {
            [a, b] => Some((split(a)?, split(b)?)),
            _ => None,
        }
    }
}

/// `[store]`: where state lives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://bankpipe.db` (default) or `postgres://user@host/db`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// PostgreSQL only: keep bankpipe's tables in this schema (created if missing).
    #[serde(default)]
    pub schema: Option<String>,
    /// Name of an environment variable holding the database URL (so a
    /// PostgreSQL password stays out of the file); when set, it replaces
    /// `database_url`.
    #[serde(default)]
    pub database_url_env: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { database_url: default_database_url(), schema: None, database_url_env: None }
    }
}

impl StoreConfig {
    /// The database URL: from the variable `database_url_env` names, else
    /// `database_url`.
    ///
    /// # Errors
    /// The variable is named but not set (the message names it, never a value).
    pub fn url(&self) -> Result<String, String> {
        match &self.database_url_env {
            None => Ok(self.database_url.clone()),
            Some(var) => std::env::var(var)
                .map_err(|_| format!("environment variable {var} (named by store.database_url_env) is not set")),
        }
    }
}

fn default_database_url() -> String {
    "sqlite://bankpipe.db".into()
}

/// `[sync]`: incremental sync settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Days re-fetched before the watermark (late pending→posted, edits). Default 14.
    #[serde(default = "default_overlap_days")]
    pub overlap_days: u32,
    /// IANA zone of booking dates for sources that send UTC instants (Truv). Default `UTC`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// A source account's window starts no later than its oldest row still
    /// pending, back to at most this many days (a hold the bank silently
    /// dropped stops widening the window after it). Default 60.
    #[serde(default = "default_pending_lookback_days")]
    pub pending_lookback_days: u32,
    /// Seconds a worker's lease on a unit of work lasts without a
    /// heartbeat (DESIGN §7): a worker that dies loses its units after at
    /// most this long, and another worker (or the next run) finishes
    /// them. Heartbeats come every sixth of it. Default 60; 3 to 3600.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u32,
}

fn default_lease_secs() -> u32 {
    60
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            overlap_days: default_overlap_days(),
            timezone: default_timezone(),
            pending_lookback_days: default_pending_lookback_days(),
            lease_secs: default_lease_secs(),
        }
    }
}

fn default_pending_lookback_days() -> u32 {
    60
}

fn default_overlap_days() -> u32 {
    14
}

fn default_timezone() -> String {
    "UTC".into()
}

/// Source kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKindConfig {
    /// Truv transactions API.
    Truv,
    /// Firefly III API.
    Firefly,
}

/// `[[sources]]`: one source. Credentials are environment-variable names.
///
/// An entry with `links` and/or `links_file` is a *template* (Truv only):
/// [`Config::load`]/[`Config::parse`] replace it by one concrete entry per
/// link, named `{template}.{link name}`, with the link's `link_id` and
/// [`SourceConfig::template`] set. After loading, `Config::sources` holds
/// only concrete entries (`links` empty, `links_file` `None`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name, written on every row as `source`. For a link of a
    /// template: `{template}.{link name}`.
    pub name: String,
    /// `truv` or `firefly`.
    pub kind: SourceKindConfig,
    /// API origin, e.g. `https://prod.truv.com`.
    pub base_url: String,
    /// Truv link id.
    #[serde(default)]
    pub link_id: Option<String>,
    /// Truv: only these account ids (`account_ids`); empty = all of the link's accounts.
    #[serde(default)]
    pub account_ids: Vec<String>,
    /// Truv: variable holding the client id.
    #[serde(default)]
    pub client_id_env: Option<String>,
    /// Truv: variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Firefly: variable holding the personal access token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Walk the source's whole history again every this many days (a
    /// hand-kept ledger is back-dated and edited far behind any window);
    /// 0 = never. Default: 30 for Firefly, 0 for Truv. `sync --full` does it now.
    #[serde(default)]
    pub full_sweep_days: Option<u32>,
    /// Template only: the links, inline (`links = [{ link_id = "…", name =
    /// "alice" }, …]`). Empty after loading: each became its own source.
    #[serde(default)]
    pub links: Vec<LinkConfig>,
    /// Template only: a file of more links, `.csv` or `.json` by extension,
    /// relative to the configuration file's directory (format: README
    /// "Many links"). `None` after loading.
    #[serde(default)]
    pub links_file: Option<String>,
    /// Set on loading for a source expanded from a template: the template's
    /// name (a `[[rules]]` `source` naming it matches every link). Not a
    /// TOML key.
    #[serde(skip)]
    pub template: Option<String>,
}

/// One link of a template source (`links = [...]` or one entry of its
/// `links_file`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// The Truv link id (per user; the credentials stay on the template).
    pub link_id: String,
    /// Link name, `[A-Za-z0-9_-]{1,64}`, unique within the template; the
    /// concrete source is named `{template}.{name}`.
    pub name: String,
    /// Per sink name: this link's source account id → sink account id,
    /// merged into that sink's `accounts` as `"{template}.{name}:{source
    /// account id}"`.
    #[serde(default)]
    pub accounts: BTreeMap<String, BTreeMap<String, String>>,
}

impl SourceConfig {
    /// [`SourceConfig::full_sweep_days`] with its per-kind default.
    pub fn full_sweep_days(&self) -> u32 {
        self.full_sweep_days.unwrap_or(match self.kind {
            SourceKindConfig::Firefly => 30,
            SourceKindConfig::Truv => 0,
        })
    }
}

/// `[[rules]]`: a categorization rule. All given conditions must hold
/// (AND); at least one is required. First matching rule wins.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name used in errors and `explain` (default `rules[N]`).
    #[serde(default)]
    pub name: Option<String>,
    /// Regex on the merchant name (case-insensitive).
    #[serde(default)]
    pub match_merchant: Option<String>,
    /// Regex on the description (case-insensitive).
    #[serde(default)]
    pub match_description: Option<String>,
    /// Exact MCC.
    #[serde(default)]
    pub mcc: Option<u16>,
    /// Inclusive MCC range `[from, to]`.
    #[serde(default)]
    pub mcc_range: Option<[u16; 2]>,
    /// Smallest signed amount (decimal string, e.g. `"-100.00"`), inclusive.
    #[serde(default)]
    pub amount_min: Option<String>,
    /// Largest signed amount (decimal string), inclusive.
    #[serde(default)]
    pub amount_max: Option<String>,
    /// `debit` (negative amounts) or `credit` (positive).
    #[serde(default)]
    pub sign: Option<String>,
    /// Source account id.
    #[serde(default)]
    pub account: Option<String>,
    /// Source name; a template's name matches every link of it (with
    /// `Categorizer::with_sources`).
    #[serde(default)]
    pub source: Option<String>,
    /// Canonical category path (`Food & Dining/Coffee Shops`) or parent (`Transfer`).
    pub category: String,
    /// Optional kind override (`purchase`, `atm`, `fee`, …).
    #[serde(default)]
    pub kind: Option<String>,
    /// Optional payee (merchant name) rename.
    #[serde(default)]
    pub payee: Option<String>,
}

/// `[categories]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoriesConfig {
    /// Replace the built-in MCC table (`config/mcc_categories.csv` format).
    #[serde(default)]
    pub mcc_table: Option<String>,
    /// Source label → canonical category (e.g. Firefly `"Salary" = "Income/Paycheck"`).
    #[serde(default)]
    pub source_labels: BTreeMap<String, String>,
    /// Canonical category → Trupocket category name (default: the subcategory name).
    #[serde(default)]
    pub trupocket: BTreeMap<String, String>,
    /// Canonical category → mibudge budget name (no default: unmapped stays unallocated).
    #[serde(default)]
    pub mibudge: BTreeMap<String, String>,
}
