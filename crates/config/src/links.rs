//! Template sources ("many links"): a `[[sources]]` entry with `links`
//! and/or `links_file` stands for one Truv source per link. Loading expands
//! it into one concrete [`SourceConfig`] per link, named
//! `{template}.{link name}`, so watermarks, `status`, metrics and canonical
//! ids are per link with nothing downstream knowing about templates; the
//! links' account mappings merge into the sinks' `accounts`.
//!
//! The separator is `.`: source names are hashed length-prefixed into
//! canonical ids, printed as Prometheus label values (quoted) and never used
//! as file names; the characters that do carry meaning in a source name are
//! `:` (`"source:account"` in `[[account_links]]`, `[sinks.accounts]`,
//! `totals --account`, split on the first `:`) and `=` (`replay --source
//! NAME=DIR`, split on the first `=`). Link names (`[A-Za-z0-9_-]`) and
//! template names (`[A-Za-z0-9_.-]`) contain neither.
//!
//! Links files are read whole but bounded: at most [`MAX_LINKS_FILE_BYTES`]
//! bytes, regular files only (never a FIFO or device), and at most
//! [`MAX_LINKS`] links and [`MAX_ACCOUNT_MAPPINGS`] account mappings in one
//! configuration.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};

use crate::{Config, ConfigError, LinkConfig, SourceConfig};

/// Largest links file read, in bytes (64 MiB).
pub const MAX_LINKS_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most links (concrete sources from templates) in one configuration.
pub const MAX_LINKS: usize = 100_000;
/// Most account mappings given by links in one configuration.
pub const MAX_ACCOUNT_MAPPINGS: usize = 1_000_000;
/// Longest link name, in bytes.
pub const MAX_LINK_NAME: usize = 64;
/// Longest link id, in bytes.
pub const MAX_LINK_ID: usize = 128;

/// The CSV header, in this order.
pub const CSV_HEADER: [&str; 5] = ["link_id", "name", "sink", "source_account", "sink_account"];

/// `true` for a valid link name: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_link_name(name: &str) -> bool {
    (1..=MAX_LINK_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `true` for a valid link id: `[A-Za-z0-9_-]{1,128}` (it becomes a URL
/// path segment; Truv's are 32 hex digits).
pub fn valid_link_id(id: &str) -> bool {
    (1..=MAX_LINK_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `true` for a valid template name: `[A-Za-z0-9_.-]{1,64}`.
pub(crate) fn valid_template_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A value as shown in an error: at most 80 characters.
fn shown(value: &str) -> String {
    match value.char_indices().nth(80) {
        None => value.to_owned(),
        Some((at, _)) => format!("{}…", &value[..at]),
    }
}

/// Where a link (or one of its mappings) was written, for errors.
#[derive(Clone, Debug)]
enum Loc {
    /// `sources[template].links[index]` of the configuration file.
    Inline { config: PathBuf, template: usize, index: usize },
    /// A CSV links file, 1-based line.
    Csv { file: PathBuf, line: u64 },
    /// A JSON links file, 0-based array index.
    Json { file: PathBuf, index: usize },
}

/// A field of a link, named per format.
enum Field<'a> {
    LinkId,
    Name,
    Sink,
    SourceAccount(&'a str),
    SinkAccount(&'a str, &'a str),
}

impl Loc {
    fn key(&self, field: &Field) -> String {
        let csv = matches!(self, Loc::Csv { .. });
        match field {
            Field::LinkId => "link_id".into(),
            Field::Name => "name".into(),
            Field::Sink if csv => "sink".into(),
            Field::SourceAccount(_) if csv => "source_account".into(),
            Field::SinkAccount(..) if csv => "sink_account".into(),
            Field::Sink => "accounts".into(),
            Field::SourceAccount(sink) => format!("accounts.{sink:?}"),
            Field::SinkAccount(sink, src) => format!("accounts.{sink:?}.{src:?}"),
        }
    }

    fn error(&self, field: Field, value: &str, problem: impl Into<String>) -> ConfigError {
        let key = self.key(&field);
        let (value, problem) = (shown(value), problem.into());
        match self {
            Loc::Inline { config, template, index } => ConfigError::Invalid {
                file: config.clone(),
                key: format!("sources[{template}].links[{index}].{key}"),
                value,
                problem,
            },
            Loc::Csv { file, line } => {
                ConfigError::Links { file: file.clone(), at: format!("line {line}"), key, value, problem }
            }
            Loc::Json { file, index } => {
                ConfigError::Links { file: file.clone(), at: format!("[{index}]"), key, value, problem }
            }
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Inline { config, template, index } => {
                write!(f, "{} sources[{template}].links[{index}]", config.display())
            }
            Loc::Csv { file, line } => write!(f, "{} line {line}", file.display()),
            Loc::Json { file, index } => write!(f, "{} [{index}]", file.display()),
        }
    }
}

/// One account mapping of a link.
struct Mapping {
    sink: String,
    source_account: String,
    sink_account: String,
    at: Loc,
}

/// A link as read, before checks.
struct Link {
    link_id: String,
    name: String,
    at: Loc,
    mappings: Vec<Mapping>,
}

/// Running totals against the configuration-wide caps.
#[derive(Default)]
struct Budget {
    links: usize,
    mappings: usize,
}

impl Link {
    fn from_config(l: LinkConfig, at: Loc) -> Link {
        let mappings = l
            .accounts
            .into_iter()
            .flat_map(|(sink, map)| {
                let at = at.clone();
                map.into_iter().map(move |(source_account, sink_account)| Mapping {
                    sink: sink.clone(),
                    source_account,
                    sink_account,
                    at: at.clone(),
                })
            })
            .collect();
        Link { link_id: l.link_id, name: l.name, at, mappings }
    }
}

impl Config {
    /// Replace every template in `sources` by its links (see the module
    /// docs) and merge their mappings into the sinks. Runs after the
    /// per-entry checks, so sink names are unique and templates well-formed.
    pub(crate) fn expand_links(&mut self, file: &Path) -> Result<(), ConfigError> {
        if !self.sources.iter().any(is_template) {
            return Ok(());
        }
        let base = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
        let raw = std::mem::take(&mut self.sources);
        // Concrete name -> where it was given.
        let mut names: HashMap<String, String> = raw
            .iter()
            .enumerate()
            .filter(|(_, s)| !is_template(s))
            .map(|(i, s)| (s.name.clone(), format!("sources[{i}]")))
            .collect();
        let sinks: HashMap<String, usize> = self.sinks.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        let mut budget = Budget::default();
        let mut out = Vec::with_capacity(raw.len());
        for (i, mut template) in raw.into_iter().enumerate() {
            if !is_template(&template) {
                out.push(template);
                continue;
            }
            let mut links: Vec<Link> = Vec::new();
            for (index, l) in std::mem::take(&mut template.links).into_iter().enumerate() {
                let at = Loc::Inline { config: file.to_owned(), template: i, index };
                budget.add_link(&at, &l.link_id)?;
                budget.add_mappings(&at, l.accounts.values().map(BTreeMap::len).sum())?;
                links.push(Link::from_config(l, at));
            }
            if let Some(rel) = template.links_file.take() {
                let path = base.join(&rel);
                let key = format!("sources[{i}].links_file");
                let invalid = |problem: String| ConfigError::Invalid {
                    file: file.to_owned(),
                    key: key.clone(),
                    value: shown(&rel),
                    problem,
                };
                let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                let json = match ext.as_deref() {
                    Some("csv") => false,
                    Some("json") => true,
                    _ => return Err(invalid("a links file must end in .csv or .json".into())),
                };
                let bytes = read_bounded(&path).map_err(invalid)?;
                links.extend(if json {
                    parse_json(&bytes, &path, &mut budget)?
                } else {
                    parse_csv(&bytes, &path, &mut budget)?
                });
            }
            let mut by_name: HashMap<&str, &Loc> = HashMap::new();
            let mut by_id: HashMap<&str, &Loc> = HashMap::new();
            for link in &links {
                if !valid_link_id(&link.link_id) {
                    let problem = if link.link_id.is_empty() {
                        "required".to_owned()
                    } else {
                        format!("a link id is 1 to {MAX_LINK_ID} characters of A-Z a-z 0-9 _ -")
                    };
                    return Err(link.at.error(Field::LinkId, &link.link_id, problem));
                }
                if !valid_link_name(&link.name) {
                    return Err(link.at.error(
                        Field::Name,
                        &link.name,
                        format!("a link name is 1 to {MAX_LINK_NAME} characters of A-Z a-z 0-9 _ -"),
                    ));
                }
                if let Some(first) = by_name.insert(&link.name, &link.at) {
                    return Err(link.at.error(
                        Field::Name,
                        &link.name,
                        format!("link names must be unique within template {:?}; also at {first}", template.name),
                    ));
                }
                if let Some(first) = by_id.insert(&link.link_id, &link.at) {
                    return Err(link.at.error(
                        Field::LinkId,
                        &link.link_id,
                        format!("this link is already listed in template {:?} at {first}", template.name),
                    ));
                }
            }
            for link in links {
                let concrete = format!("{}.{}", template.name, link.name);
                if let Some(first) = names.get(&concrete) {
                    return Err(link.at.error(
                        Field::Name,
                        &link.name,
                        format!("source name {concrete:?} is already taken by {first}"),
                    ));
                }
                for m in &link.mappings {
                    let Some(&s) = sinks.get(&m.sink) else {
                        return Err(m.at.error(Field::Sink, &m.sink, "no [[sinks]] entry has this name"));
                    };
                    if m.source_account.is_empty() {
                        return Err(m.at.error(Field::SourceAccount(&m.sink), "", "a source account id is required"));
                    }
                    if m.sink_account.is_empty() {
                        return Err(m.at.error(
                            Field::SinkAccount(&m.sink, &m.source_account),
                            "",
                            "a sink account id is required",
                        ));
                    }
                    let accounts = &mut self.sinks[s].accounts;
                    let qualified = format!("{concrete}:{}", m.source_account);
                    for key in [&qualified, &m.source_account] {
                        if let Some(held) = accounts.get(key).filter(|held| **held != m.sink_account) {
                            return Err(m.at.error(
                                Field::SinkAccount(&m.sink, &m.source_account),
                                &m.sink_account,
                                format!(
                                    "source account {:?} of {concrete:?} is already mapped to {held:?} \
                                     (sink {:?}, accounts key {key:?})",
                                    m.source_account, m.sink
                                ),
                            ));
                        }
                    }
                    accounts.insert(qualified, m.sink_account.clone());
                }
                names.insert(concrete.clone(), link.at.to_string());
                out.push(SourceConfig {
                    name: concrete,
                    link_id: Some(link.link_id),
                    template: Some(template.name.clone()),
                    ..template.clone()
                });
            }
        }
        self.sources = out;
        Ok(())
    }
}

/// A `[[sources]]` entry that lists links.
pub(crate) fn is_template(s: &SourceConfig) -> bool {
    !s.links.is_empty() || s.links_file.is_some()
}

impl Budget {
    fn add_link(&mut self, at: &Loc, link_id: &str) -> Result<(), ConfigError> {
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(at.error(
                Field::LinkId,
                link_id,
                format!("more than {MAX_LINKS} links in one configuration; split the deployment"),
            ));
        }
        Ok(())
    }

    fn add_mappings(&mut self, at: &Loc, n: usize) -> Result<(), ConfigError> {
        self.mappings = self.mappings.saturating_add(n);
        if self.mappings > MAX_ACCOUNT_MAPPINGS {
            return Err(at.error(
                Field::Sink,
                "",
                format!("more than {MAX_ACCOUNT_MAPPINGS} account mappings in one configuration"),
            ));
        }
        Ok(())
    }
}

/// Read a regular file of at most [`MAX_LINKS_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let too_big = |n: u64| {
        format!("{} is {n} bytes; a links file may hold at most {MAX_LINKS_FILE_BYTES} (64 MiB)", path.display())
    };
    if meta.len() > MAX_LINKS_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_LINKS_FILE_BYTES + 1).read_to_end(&mut bytes)).map_err(cannot)?;
    if bytes.len() as u64 > MAX_LINKS_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The CSV format: header [`CSV_HEADER`]; one row per (link, mapping); a
/// link without mappings has empty `sink,source_account,sink_account`.
/// Rows of one `link_id` need not be adjacent but must agree on `name`.
fn parse_csv(bytes: &[u8], file: &Path, budget: &mut Budget) -> Result<Vec<Link>, ConfigError> {
    let parse = |line: Option<u64>, message: String| ConfigError::Parse {
        file: file.to_owned(),
        message: match line {
            Some(l) => format!("line {l}: {message}"),
            None => message,
        },
    };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = reader.headers().map_err(|e| parse(Some(1), e.to_string()))?.clone();
    if header.iter().ne(CSV_HEADER) {
        let found: Vec<&str> = header.iter().collect();
        return Err(ConfigError::Links {
            file: file.to_owned(),
            at: "line 1".into(),
            key: "header".into(),
            value: shown(&found.join(",")),
            problem: format!("expected {}", CSV_HEADER.join(",")),
        });
    }
    let mut links: Vec<Link> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(csv::Position::line);
                return Err(parse(line, e.to_string()));
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        let at = Loc::Csv { file: file.to_owned(), line };
        let [link_id, name, sink, src, dst] = std::array::from_fn(|i| record.get(i).unwrap_or(""));
        if link_id.is_empty() {
            return Err(at.error(Field::LinkId, "", "required"));
        }
        let slot = match index.get(link_id) {
            Some(&slot) => {
                let held = &links[slot];
                if held.name != name {
                    return Err(at.error(
                        Field::Name,
                        name,
                        format!("rows of one link must agree on name; {} has {:?}", held.at, held.name),
                    ));
                }
                slot
            }
            None => {
                budget.add_link(&at, link_id)?;
                index.insert(link_id.to_owned(), links.len());
                links.push(Link {
                    link_id: link_id.to_owned(),
                    name: name.to_owned(),
                    at: at.clone(),
                    mappings: vec![],
                });
                links.len() - 1
            }
        };
        match (sink.is_empty(), src.is_empty(), dst.is_empty()) {
            (true, true, true) => {}
            (false, false, false) => {
                budget.add_mappings(&at, 1)?;
                links[slot].mappings.push(Mapping {
                    sink: sink.to_owned(),
                    source_account: src.to_owned(),
                    sink_account: dst.to_owned(),
                    at,
                });
            }
            (true, ..) => {
                return Err(at.error(Field::Sink, sink, "give sink, source_account and sink_account, or none"))
            }
            (_, true, _) => {
                return Err(at.error(
                    Field::SourceAccount(sink),
                    src,
                    "give sink, source_account and sink_account, or none",
                ))
            }
            (..) => {
                return Err(at.error(
                    Field::SinkAccount(sink, src),
                    dst,
                    "give sink, source_account and sink_account, or none",
                ))
            }
        }
    }
    Ok(links)
}

/// The JSON format: an array of [`LinkConfig`] objects.
fn parse_json(bytes: &[u8], file: &Path, budget: &mut Budget) -> Result<Vec<Link>, ConfigError> {
    let parse = |message: String| ConfigError::Parse { file: file.to_owned(), message };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let remaining = MAX_LINKS.saturating_sub(budget.links);
    let list =
        Bounded(remaining).deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track)).map_err(|e| {
            let path = track.path().to_string();
            parse(if path == "." { e.to_string() } else { format!("{path}: {e}") })
        })?;
    de.end().map_err(|e| parse(e.to_string()))?;
    let mut links = Vec::with_capacity(list.len());
    for (index, l) in list.into_iter().enumerate() {
        let at = Loc::Json { file: file.to_owned(), index };
        budget.add_link(&at, &l.link_id)?;
        budget.add_mappings(&at, l.accounts.values().map(BTreeMap::len).sum())?;
        links.push(Link::from_config(l, at));
    }
    Ok(links)
}

/// A JSON array of at most `.0` links: the element after the last allowed
/// one is an error, so a huge file is not held whole in memory as links.
struct Bounded(usize);

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Vec<LinkConfig>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Vec<LinkConfig>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of links ({\"link_id\": …, \"name\": …, \"accounts\": {…}})")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(link) = seq.next_element::<LinkConfig>()? {
            if out.len() >= self.0 {
                return Err(A::Error::custom(format!("more than {MAX_LINKS} links in one configuration")));
            }
            out.push(link);
        }
        Ok(out)
    }
}
