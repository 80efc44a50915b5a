//! Categorization (DESIGN §5).
//!
//! Priority, first that applies:
//! 1. a user rule (`[[rules]]`, first match wins) — `category_source = rule`;
//! 2. the MCC table decides the **parent**, and a source label under the
//!    same parent refines the subcategory (MCC 5814 + Truv `Food &
//!    Dining/Coffee Shops` → Coffee Shops) — `mcc+source`;
//! 3. the MCC's own category (5411 + a source `Transfer` → Food &
//!    Dining/Groceries) — `mcc`;
//! 4. without a usable MCC, the source label (Truv `categories`, Firefly
//!    `category_name` through `[categories.source_labels]`); a label the
//!    taxonomy does not know is kept as written, not dropped — `source`;
//! 5. else `Uncategorized` — `default`.
//!
//! Then the kind is derived ([`kind::derive_kind`]) unless a rule set it.
//! Rules are compiled once and the MCC lookup is one array index, so the
//! stage costs little per row.

pub mod kind;
pub mod mcc;
pub mod rules;
pub mod sink_maps;
pub mod taxonomy;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use bankpipe_config::{CategoriesConfig, RuleConfig, SourceConfig};
use bankpipe_model::{CategorySource, Transaction};

use self::mcc::MccTable;
use self::rules::Rule;
use self::sink_maps::SinkCategoryMaps;
use self::taxonomy::{CategoryId, Taxonomy};

/// Invalid categorization data or configuration.
#[derive(Debug, thiserror::Error)]
pub enum CategorizeError {
    /// A data file (taxonomy, MCC table) is malformed.
    #[error("{origin}: line {line}: {problem}")]
    Data { origin: String, line: usize, problem: String },
    /// A rule is invalid.
    #[error("rule {rule:?}: {key} = {value:?}: {problem}")]
    Rule { rule: String, key: String, value: String, problem: String },
    /// A map entry is invalid.
    #[error("[{table}] {key:?}: {problem}")]
    Map { table: String, key: String, problem: String },
}

/// What decided a row's category, for `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `rules[i]` matched.
    Rule(usize),
    /// The MCC table row alone; `ignored_label` is a source label that was
    /// present but not under the MCC's parent.
    Mcc { ignored_label: bool },
    /// The MCC's parent, refined by the source label.
    MccAndSource,
    /// The source label; `mapped` when it went through `[categories.source_labels]`.
    Source { known: bool, mapped: bool },
    /// Nothing applied.
    Default,
}

/// A resolved source label.
enum Label {
    Known { id: CategoryId, mapped: bool },
    Unknown(String),
}

/// Categorization state: taxonomy, MCC table, compiled rules, label map
/// and per-sink maps. Build once, use for every row.
#[derive(Debug)]
pub struct Categorizer {
    taxonomy: Taxonomy,
    mcc: MccTable,
    rules: Vec<Rule>,
    source_labels: HashMap<String, CategoryId>,
    /// Source name → the template it was expanded from (links of template
    /// sources only), for rules whose `source` names a template.
    templates: HashMap<String, String>,
    /// Canonical → sink category maps.
    pub sink_maps: SinkCategoryMaps,
}

impl Categorizer {
    /// Built-in taxonomy and MCC table, no rules, no maps.
    pub fn builtin() -> Categorizer {
        Categorizer::new(&[], &CategoriesConfig::default(), None).expect("built-in data is valid")
    }

    /// Build from the configuration. `mcc_table` replaces the built-in MCC
    /// table: `(csv text, file name for errors)`.
    ///
    /// # Errors
    /// [`CategorizeError`] naming the rule, map entry or data line at fault.
    pub fn new(
        rules: &[RuleConfig],
        categories: &CategoriesConfig,
        mcc_table: Option<(&str, &str)>,
    ) -> Result<Categorizer, CategorizeError> {
        let taxonomy = Taxonomy::builtin();
        let mcc = match mcc_table {
            Some((text, origin)) => MccTable::parse(text, origin, &taxonomy)?,
            None => MccTable::builtin(&taxonomy),
        };
        let rules = rules.iter().enumerate().map(|(i, r)| Rule::compile(i, r, &taxonomy)).collect::<Result<_, _>>()?;
        let mut source_labels = HashMap::new();
        for (label, target) in &categories.source_labels {
            let id = taxonomy.by_path(target).ok_or_else(|| CategorizeError::Map {
                table: "categories.source_labels".into(),
                key: label.clone(),
                problem: format!("{target:?} is not a category of config/taxonomy.csv"),
            })?;
            source_labels.insert(label.clone(), id);
        }
        let sink_maps = SinkCategoryMaps::from_config(categories, &taxonomy)?;
        Ok(Categorizer { taxonomy, mcc, rules, source_labels, templates: HashMap::new(), sink_maps })
    }

    /// Teach the rules which sources are links of a template (the sources
    /// of a loaded configuration, [`SourceConfig::template`]), so that a
    /// rule with `source = "<template>"` matches the rows of every link.
    /// Without this a rule's `source` matches only the exact source name.
    pub fn with_sources(mut self, sources: &[SourceConfig]) -> Categorizer {
        self.templates =
            sources.iter().filter_map(|s| Some((s.name.clone(), s.template.clone()?))).collect::<HashMap<_, _>>();
        self
    }

    /// The taxonomy in use.
    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// The MCC table in use.
    pub fn mcc_table(&self) -> &MccTable {
        &self.mcc
    }

    /// Set `category`, `category_source` and `kind` (and, for a rule with
    /// `payee`, `merchant_name`) on `tx`; returns what decided.
    pub fn categorize(&self, tx: &mut Transaction) -> Decision {
        let (category, source, decision, rule_kind) = self.decide(tx);
        tx.category = Some(category);
        tx.category_source = source;
        tx.kind = rule_kind.unwrap_or_else(|| kind::derive_kind(tx));
        decision
    }

    fn decide(&self, tx: &mut Transaction) -> (Arc<str>, CategorySource, Decision, Option<bankpipe_model::Kind>) {
        let path = |id: CategoryId| Arc::clone(&self.taxonomy.get(id).path);
        let template = self.templates.get(&*tx.source).map(String::as_str);
        if let Some(i) = self.rules.iter().position(|r| r.matches(tx, template)) {
            let rule = &self.rules[i];
            if let Some(p) = &rule.payee {
                tx.merchant_name = Some(p.clone());
            }
            return (path(rule.category), CategorySource::Rule, Decision::Rule(i), rule.kind);
        }
        let label = self.source_label(tx);
        if let Some(row) = tx.mcc.and_then(|m| self.mcc.get(m)) {
            let parent = self.taxonomy.get(row.category).parent_id;
            if let Some(Label::Known { id, .. }) = &label {
                let c = self.taxonomy.get(*id);
                if c.parent_id == parent && c.sub.is_some() {
                    return (path(*id), CategorySource::MccAndSource, Decision::MccAndSource, None);
                }
            }
            let decision = Decision::Mcc { ignored_label: label.is_some() };
            return (path(row.category), CategorySource::Mcc, decision, None);
        }
        match label {
            Some(Label::Known { id, mapped }) => {
                (path(id), CategorySource::Source, Decision::Source { known: true, mapped }, None)
            }
            Some(Label::Unknown(text)) => {
                (Arc::from(text), CategorySource::Source, Decision::Source { known: false, mapped: false }, None)
            }
            None => (path(self.taxonomy.uncategorized()), CategorySource::Default, Decision::Default, None),
        }
    }

    /// Resolve the row's source labels: a Truv `[parent, sub]` pair, a path,
    /// a parent, a unique subcategory name, or a configured mapping.
    fn source_label(&self, tx: &Transaction) -> Option<Label> {
        let labels = &tx.source_categories;
        match labels.as_slice() {
            [] => return None,
            [parent, sub] => {
                if let Some(id) = self.taxonomy.pair(parent, sub) {
                    return Some(Label::Known { id, mapped: false });
                }
            }
            _ => {}
        }
        let joined = labels.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("/");
        if joined.is_empty() {
            return None;
        }
        if let Some(id) = self.source_labels.get(&joined) {
            return Some(Label::Known { id: *id, mapped: true });
        }
        if let Some(id) = self.taxonomy.resolve_label(&joined) {
            return Some(Label::Known { id, mapped: false });
        }
        Some(Label::Unknown(joined))
    }

    /// One line saying which rule, MCC row or source label decided `tx`'s
    /// category (after [`Categorizer::categorize`] returned `decision`).
    pub fn explain(&self, tx: &Transaction, decision: &Decision) -> String {
        let category = tx.category.as_deref().unwrap_or("");
        let label = || format!("{:?}", tx.source_categories.join("/"));
        let mcc = || {
            tx.mcc
                .and_then(|m| self.mcc.get(m).map(|row| (m, row)))
                .map(|(m, row)| {
                    let range =
                        if row.from == row.to { String::new() } else { format!(", row {:04}-{:04}", row.from, row.to) };
                    format!("MCC {m} ({}{range}) -> {}", row.description, self.taxonomy.get(row.category).path)
                })
                .unwrap_or_default()
        };
        let mut out = String::new();
        let _ = match decision {
            Decision::Rule(i) => {
                let r = &self.rules[*i];
                write!(out, "rule {:?} ({}) -> {category}", r.name, r.conditions)
            }
            Decision::Mcc { ignored_label: false } => write!(out, "{}", mcc()),
            Decision::Mcc { ignored_label: true } => {
                write!(out, "{}; source label {} is not under that parent and is ignored", mcc(), label())
            }
            Decision::MccAndSource => {
                write!(out, "{}; source label {} refines the subcategory -> {category}", mcc(), label())
            }
            Decision::Source { known: true, mapped: true } => {
                write!(out, "no MCC; source label {} mapped by [categories.source_labels] -> {category}", label())
            }
            Decision::Source { known: true, mapped: false } => {
                write!(out, "no MCC; source label {} -> {category}", label())
            }
            Decision::Source { known: false, .. } => {
                write!(out, "no MCC; source label {} is not in the taxonomy and is kept as written", label())
            }
            Decision::Default => write!(out, "no rule, no MCC and no source label -> {category}"),
        };
        let _ = write!(out, "; kind {}", tx.kind.as_str());
        out
    }
}

#[cfg(test)]
mod tests;
