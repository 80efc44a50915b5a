//! User rules (`[[rules]]`), compiled once at load: all given conditions
//! must hold; the first matching rule wins.

use bankpipe_config::RuleConfig;
use bankpipe_model::{Kind, Transaction};
use regex::{Regex, RegexBuilder};
use rust_decimal::Decimal;

use super::kind::parse_kind;
use super::taxonomy::{CategoryId, Taxonomy};
use super::CategorizeError;

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// `name`, or `rules[N]` when unnamed.
    pub name: String,
    merchant: Option<Regex>,
    description: Option<Regex>,
    mcc: Option<(u16, u16)>,
    amount_min: Option<Decimal>,
    amount_max: Option<Decimal>,
    debit: Option<bool>,
    account: Option<String>,
    source: Option<String>,
    /// Category it assigns.
    pub category: CategoryId,
    /// Kind it assigns, if any.
    pub kind: Option<Kind>,
    /// Payee (merchant name) it assigns, if any.
    pub payee: Option<String>,
    /// A one-line summary of the conditions, for `explain`.
    pub conditions: String,
}

impl Rule {
    /// Compile and validate one rule (`index` is its position in the file).
    ///
    /// # Errors
    /// [`CategorizeError::Rule`] naming the rule, the key, the value and the problem.
    pub fn compile(index: usize, spec: &RuleConfig, taxonomy: &Taxonomy) -> Result<Rule, CategorizeError> {
        let name = spec.name.clone().unwrap_or_else(|| format!("rules[{index}]"));
        let bad = |key: &str, value: &str, problem: String| CategorizeError::Rule {
            rule: name.clone(),
            key: key.to_owned(),
            value: value.to_owned(),
            problem,
        };
        let regex = |key: &str, pattern: &Option<String>| -> Result<Option<Regex>, CategorizeError> {
            pattern
                .as_deref()
                .map(|p| RegexBuilder::new(p).case_insensitive(true).build().map_err(|e| bad(key, p, e.to_string())))
                .transpose()
        };
        let amount = |key: &str, v: &Option<String>| -> Result<Option<Decimal>, CategorizeError> {
            v.as_deref().map(|t| bankpipe_model::parse_decimal(t).map_err(|e| bad(key, t, e.to_string()))).transpose()
        };
        let mcc = match (spec.mcc, spec.mcc_range) {
            (Some(_), Some(_)) => return Err(bad("mcc_range", "", "give either mcc or mcc_range, not both".into())),
            (Some(c), None) => Some((c, c)),
            (None, Some([a, b])) if a <= b && b <= 9999 => Some((a, b)),
            (None, Some([a, b])) => {
                return Err(bad("mcc_range", &format!("[{a}, {b}]"), "need from <= to <= 9999".into()))
            }
            (None, None) => None,
        };
        if let Some((c, _)) = mcc.filter(|(c, _)| *c > 9999) {
            return Err(bad("mcc", &c.to_string(), "an MCC is 0000-9999".into()));
        }
        let debit = match spec.sign.as_deref() {
            None => None,
            Some("debit") => Some(true),
            Some("credit") => Some(false),
            Some(other) => return Err(bad("sign", other, "expected \"debit\" or \"credit\"".into())),
        };
        let category = taxonomy
            .by_path(&spec.category)
            .ok_or_else(|| bad("category", &spec.category, "not a category of config/taxonomy.csv".into()))?;
        let kind = spec
            .kind
            .as_deref()
            .map(|k| parse_kind(k).ok_or_else(|| bad("kind", k, "not a kind (purchase, atm, fee, interest, transfer, deposit, payroll, check, adjustment, other)".into())))
            .transpose()?;
        let rule = Rule {
            merchant: regex("match_merchant", &spec.match_merchant)?,
            description: regex("match_description", &spec.match_description)?,
            mcc,
            amount_min: amount("amount_min", &spec.amount_min)?,
            amount_max: amount("amount_max", &spec.amount_max)?,
            debit,
            account: spec.account.clone(),
            source: spec.source.clone(),
            category,
            kind,
            payee: spec.payee.clone(),
            conditions: describe(spec),
            name: name.clone(),
        };
        if rule.conditions.is_empty() {
            return Err(bad(
                "match_*",
                "",
                "a rule needs at least one condition; it would match every transaction".into(),
            ));
        }
        Ok(rule)
    }

    /// `true` when every condition holds for `tx`. `template` is the
    /// template `tx.source` was expanded from (`SourceConfig::template`), if
    /// any: a `source` condition naming it matches every link of it.
    pub fn matches(&self, tx: &Transaction, template: Option<&str>) -> bool {
        let amount = tx.amount.amount();
        self.source.as_deref().is_none_or(|s| *tx.source == *s || template == Some(s))
            && self.account.as_deref().is_none_or(|a| tx.source_account_id == a)
            && self.debit.is_none_or(|d| d == tx.amount.is_negative())
            && self.mcc.is_none_or(|(lo, hi)| tx.mcc.is_some_and(|m| (lo..=hi).contains(&m.get())))
            && self.amount_min.is_none_or(|min| amount >= min)
            && self.amount_max.is_none_or(|max| amount <= max)
            && self.merchant.as_ref().is_none_or(|r| tx.merchant_name.as_deref().is_some_and(|m| r.is_match(m)))
            && self.description.as_ref().is_none_or(|r| r.is_match(&tx.description))
    }
}

fn describe(spec: &RuleConfig) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k} {v}"));
        }
    };
    add("merchant ~", spec.match_merchant.as_ref().map(|p| format!("/{p}/i")));
    add("description ~", spec.match_description.as_ref().map(|p| format!("/{p}/i")));
    add("mcc =", spec.mcc.map(|m| format!("{m:04}")));
    add("mcc in", spec.mcc_range.map(|[a, b]| format!("{a:04}-{b:04}")));
    add("amount >=", spec.amount_min.clone());
    add("amount <=", spec.amount_max.clone());
    add("sign =", spec.sign.clone());
    add("account =", spec.account.clone());
    add("source =", spec.source.clone());
    parts.join(", ")
}
