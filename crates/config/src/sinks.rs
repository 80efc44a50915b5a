//! `[[sinks]]`: one configuration type per sink kind (DESIGN §6, §10).
//!
//! An entry is a [`SinkConfig`]: the keys every delivering sink has (name,
//! API origin, rate-limit wait, account mapping, pending rows) and, picked
//! by `kind = "…"`, a [`SinkKind`] holding that kind's own keys
//! ([`TrupocketConfig`], [`MibudgeConfig`]; a `file` sink has none). Each
//! entry is read as a TOML table first and its keys checked against its
//! kind's, so a key of another kind (`household_id` on a mibudge sink) or a
//! misspelt one is refused with the entry's index and name, the key and its
//! value — not silently ignored, and not with serde's bare "unknown field".
//! The key lists are the types' own field lists ([`struct_fields`]), so they
//! cannot drift from the types.
//!
//! Credentials are named by environment variable ([`EnvSecret`]) and read
//! once, before a run starts ([`SinkConfig::resolve_secrets`]): a variable
//! that is not set is a configuration error naming the sink and the
//! variable before anything is fetched or sent, and the live sinks never
//! read the environment themselves.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::Deserialize;

use crate::ConfigError;

/// `[[sinks]]`: one sink. `kind` holds the keys of its kind; the others
/// are common to the API sinks (a `file` sink takes only `name`, `kind` and
/// `base_url`).
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Unique name.
    pub name: String,
    /// API origin (or, for `file`, the output directory).
    pub base_url: String,
    /// Longest wait for a rate-limit window, in seconds, before stopping with
    /// exit 75 (default 60).
    pub max_wait_secs: Option<u64>,
    /// `[sinks.accounts]`: source account id (`"source:account"` or a bare
    /// account id) → sink account id. Links of a template source add
    /// theirs on loading.
    pub accounts: BTreeMap<String, String>,
    /// Deliver pending rows too (default: posted only). Refused for
    /// Trupocket, which cannot correct a row.
    pub deliver_pending: bool,
    /// `kind = "trupocket" | "mibudge" | "file"` and that kind's own keys.
    pub kind: SinkKind,
}

/// A sink's kind, with the keys only that kind has.
#[derive(Clone, Debug)]
pub enum SinkKind {
    /// `kind = "trupocket"`: the Trupocket REST API.
    Trupocket(TrupocketConfig),
    /// `kind = "mibudge"`: the mibudge REST API.
    Mibudge(MibudgeConfig),
    /// `kind = "file"`: canonical JSONL/CSV files (written by `replay` and
    /// `export`; `sync` delivers nothing to it).
    File,
}

/// The keys of a `kind = "trupocket"` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrupocketConfig {
    /// Variable holding the PAT (`tp_` + 64 hex).
    pub token_env: EnvSecret,
    /// The household's id.
    pub household_id: String,
    /// Create accounts (chkg/svgs/cc) for unmapped source accounts.
    #[serde(default)]
    pub create_accounts: bool,
    /// Create missing categories (else use `fallback_category`).
    #[serde(default)]
    pub create_categories: bool,
    /// Category used when the mapped one does not exist and may not be
    /// created. Default `Uncategorized`.
    #[serde(default = "default_fallback_category")]
    pub fallback_category: String,
    /// The household's currency (amounts in other currencies are refused,
    /// never converted). Default `USD`.
    #[serde(default = "default_sink_currency")]
    pub currency: String,
}

/// The keys of a `kind = "mibudge"` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MibudgeConfig {
    /// Variable holding the login (email).
    pub login_env: EnvSecret,
    /// Variable holding the password.
    pub password_env: EnvSecret,
    /// The login field of `POST /api/token/` (`email`; older servers
    /// `username`). Default `email`.
    #[serde(default = "default_login_field")]
    pub login_field: String,
}

/// A credential, given in the file as the name of the environment variable
/// that holds it (`token_env = "TRUPOCKET_PAT"`, DESIGN §10) and read from
/// the environment once, before a run, by [`SinkConfig::resolve_secrets`].
/// The value is a [`SecretString`]: `Debug` shows the variable's name only,
/// never the value (nor whether it was read).
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct EnvSecret {
    var: String,
    value: Option<SecretString>,
}

impl From<String> for EnvSecret {
    fn from(var: String) -> EnvSecret {
        EnvSecret { var, value: None }
    }
}

impl fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EnvSecret").field(&self.var).finish()
    }
}

impl EnvSecret {
    /// The environment variable's name, as written in the file.
    pub fn var(&self) -> &str {
        &self.var
    }

    /// The value read by [`SinkConfig::resolve_secrets`]; `None` before
    /// (a live sink refuses to start without it).
    pub fn value(&self) -> Option<&SecretString> {
        self.value.as_ref()
    }

    /// Read the variable now; `key` names it in errors.
    fn resolve(&mut self, sink: &str, key: &'static str) -> Result<(), ConfigError> {
        let problem = match std::env::var(&self.var) {
            Ok(v) if !v.trim().is_empty() => {
                self.value = Some(SecretString::from(v));
                return Ok(());
            }
            Ok(_) => "empty",
            Err(std::env::VarError::NotPresent) => "not set",
            Err(std::env::VarError::NotUnicode(_)) => "not valid Unicode",
        };
        Err(ConfigError::Secret { sink: sink.to_owned(), key, var: self.var.clone(), problem })
    }
}

/// The keys every API sink has (all of [`SinkConfig`] but `kind`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkCommon {
    name: String,
    base_url: String,
    #[serde(default)]
    max_wait_secs: Option<u64>,
    #[serde(default)]
    accounts: BTreeMap<String, String>,
    #[serde(default)]
    deliver_pending: bool,
}

fn default_fallback_category() -> String {
    "Uncategorized".into()
}
fn default_sink_currency() -> String {
    "USD".into()
}
fn default_login_field() -> String {
    "email".into()
}

/// The kinds, as written after `kind =`.
const KINDS: [&str; 3] = ["trupocket", "mibudge", "file"];

/// The keys of a `file` sink.
const FILE_KEYS: [&str; 3] = ["name", "kind", "base_url"];

impl SinkKind {
    /// `trupocket`, `mibudge` or `file`, as written after `kind =`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Trupocket(_) => "trupocket",
            SinkKind::Mibudge(_) => "mibudge",
            SinkKind::File => "file",
        }
    }

    /// The keys only a sink of `kind` has (besides the common ones);
    /// `None` for an unknown kind.
    fn own_keys(kind: &str) -> Option<&'static [&'static str]> {
        match kind {
            "trupocket" => Some(struct_fields::<TrupocketConfig>()),
            "mibudge" => Some(struct_fields::<MibudgeConfig>()),
            "file" => Some(&[]),
            _ => None,
        }
    }

    /// The keys of the kind that must be given, as non-empty text.
    fn required(kind: &str) -> &'static [&'static str] {
        match kind {
            "trupocket" => &["token_env", "household_id"],
            "mibudge" => &["login_env", "password_env"],
            _ => &[],
        }
    }
}

impl SinkConfig {
    /// Read the sink's credentials from the environment variables its
    /// `*_env` keys name (Trupocket `token_env`; mibudge `login_env`,
    /// `password_env`), once, before a run starts; a `file` sink has none.
    ///
    /// # Errors
    /// [`ConfigError::Secret`] naming the sink, the key and the variable
    /// (never a value) when a variable is not set, empty or not Unicode.
    pub fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        let name = &self.name;
        match &mut self.kind {
            SinkKind::Trupocket(tp) => tp.token_env.resolve(name, "token_env"),
            SinkKind::Mibudge(mb) => {
                mb.login_env.resolve(name, "login_env")?;
                mb.password_env.resolve(name, "password_env")
            }
            SinkKind::File => Ok(()),
        }
    }

    /// `true` for a `kind = "file"` sink (which takes no deliveries).
    pub fn is_file(&self) -> bool {
        matches!(self.kind, SinkKind::File)
    }

    /// The Trupocket keys, for a `kind = "trupocket"` sink.
    pub fn trupocket(&self) -> Option<&TrupocketConfig> {
        match &self.kind {
            SinkKind::Trupocket(tp) => Some(tp),
            _ => None,
        }
    }

    /// The mibudge keys, for a `kind = "mibudge"` sink.
    pub fn mibudge(&self) -> Option<&MibudgeConfig> {
        match &self.kind {
            SinkKind::Mibudge(mb) => Some(mb),
            _ => None,
        }
    }

    /// The entry `sinks[index]` from its TOML table: its keys checked
    /// against its kind's, then typed.
    ///
    /// # Errors
    /// A message `sinks[i].key = value: problem (sink "name")`.
    fn from_table(index: usize, mut table: toml::Table) -> Result<SinkConfig, String> {
        let at = |key: &str| format!("sinks[{index}].{key}");
        let name = match table.get("name") {
            Some(toml::Value::String(n)) => n.clone(),
            Some(other) => return Err(format!("{} = {}: expected the sink's name as text", at("name"), shown(other))),
            None => return Err(format!("{}: required (a unique name for the sink)", at("name"))),
        };
        let whose = format!("sink {name:?}");
        let kind = match table.remove("kind") {
            Some(toml::Value::String(k)) => k,
            Some(other) => {
                return Err(format!(
                    "{} = {}: expected one of {} ({whose})",
                    at("kind"),
                    shown(&other),
                    KINDS.join(", ")
                ))
            }
            None => return Err(format!("{}: required, one of {} ({whose})", at("kind"), KINDS.join(", "))),
        };
        let Some(own) = SinkKind::own_keys(&kind) else {
            return Err(format!(
                "{} = {kind:?}: unknown kind; expected one of {} ({whose})",
                at("kind"),
                KINDS.join(", ")
            ));
        };
        let common: &[&str] = if kind == "file" { &FILE_KEYS } else { struct_fields::<SinkCommon>() };
        for (key, value) in &table {
            if key == "kind" || common.contains(&key.as_str()) || own.contains(&key.as_str()) {
                continue;
            }
            let allowed: Vec<&str> =
                std::iter::once("kind").chain(common.iter().copied()).chain(own.iter().copied()).collect();
            let elsewhere: Vec<&str> = KINDS
                .into_iter()
                .filter(|k| *k != kind)
                .filter(|k| {
                    SinkKind::own_keys(k).is_some_and(|keys| keys.contains(&key.as_str()))
                        || (kind == "file" && struct_fields::<SinkCommon>().contains(&key.as_str()))
                })
                .collect();
            let problem = if elsewhere.is_empty() {
                format!("{whose} is kind = {kind:?}, which has no such key")
            } else {
                format!("{whose} is kind = {kind:?}; {key} belongs to a {} sink", elsewhere.join(" or "))
            };
            return Err(format!(
                "{} = {}: {problem} (a {kind} sink takes {})",
                at(key),
                shown(value),
                allowed.join(", ")
            ));
        }
        for key in SinkKind::required(&kind) {
            match table.get(*key) {
                None => return Err(format!("{}: required for kind = {kind:?} ({whose})", at(key))),
                Some(toml::Value::String(v)) if v.trim().is_empty() => {
                    return Err(format!(
                        "{} = \"\": required for kind = {kind:?}; it names no variable ({whose})",
                        at(key)
                    ))
                }
                Some(_) => {}
            }
        }
        let (common_table, own_table): (toml::Table, toml::Table) =
            table.into_iter().partition(|(k, _)| common.contains(&k.as_str()));
        let typed = |e: serde_path_to_error::Error<toml::de::Error>| {
            format!("{}: {} ({whose})", at(&e.path().to_string()), e.inner().message())
        };
        let common: SinkCommon = serde_path_to_error::deserialize(common_table).map_err(typed)?;
        let kind = match kind.as_str() {
            "trupocket" => SinkKind::Trupocket(serde_path_to_error::deserialize(own_table).map_err(typed)?),
            "mibudge" => SinkKind::Mibudge(serde_path_to_error::deserialize(own_table).map_err(typed)?),
            _ => SinkKind::File,
        };
        let SinkCommon { name, base_url, max_wait_secs, accounts, deliver_pending } = common;
        Ok(SinkConfig { name, base_url, max_wait_secs, accounts, deliver_pending, kind })
    }
}

/// A value as shown in an error: its TOML text, at most 80 characters.
fn shown(value: &toml::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        None => text,
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// `Config::sinks`: the array of `[[sinks]]` tables, each read by
/// [`SinkConfig::from_table`] with its index (errors keep the entry's
/// place in the file: the TOML parser adds its line).
pub(crate) fn deserialize_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SinkConfig>, D::Error> {
    d.deserialize_seq(List)
}

struct List;

impl<'de> Visitor<'de> for List {
    type Value = Vec<SinkConfig>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [[sinks]] tables")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(sink) = seq.next_element_seed(Entry(out.len()))? {
            out.push(sink);
        }
        Ok(out)
    }
}

/// The entry at an index of `[[sinks]]`.
struct Entry(usize);

impl<'de> DeserializeSeed<'de> for Entry {
    type Value = SinkConfig;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<SinkConfig, D::Error> {
        let table = toml::Table::deserialize(d)?;
        SinkConfig::from_table(self.0, table).map_err(D::Error::custom)
    }
}

/// The field names (TOML keys) of a struct deriving `Deserialize`, as the
/// derive passes them to `deserialize_struct` (fields with `#[serde(skip)]`
/// are not keys and are not listed). Empty for a type that is not a struct.
pub(crate) fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only records the field list it is asked for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(Self::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
