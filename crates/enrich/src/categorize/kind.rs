//! Kind derivation: what sort of movement a transaction is, from its MCC,
//! source type, check number, category and description. Sinks use it
//! (Trupocket `cashflow`/`type`, mibudge `transaction_type`).

use bankpipe_model::{Kind, Transaction};

/// Parse a kind name (`purchase`, `atm`, …).
pub fn parse_kind(name: &str) -> Option<Kind> {
    Kind::from_name(name)
}

fn has_word(text: &str, words: &[&str]) -> bool {
    // Descriptions are short; an ASCII upper-case copy keeps the check simple.
    let upper = text.to_ascii_uppercase();
    words.iter().any(|w| upper.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == *w))
}

/// Derive the kind, in order of certainty: MEMO lines are `other`; Firefly
/// transfers and reconciliations keep their type; a check number means
/// `check`; cash-disbursement MCCs (6010, 6011) mean `atm`; then the
/// category (Income/Paycheck → payroll, Income/Interest Income → interest,
/// Fees & Charges → fee, Transfer → transfer) and description words
/// (PAYROLL/SALARY, INTEREST, FEE, TRANSFER/XFER); else debits are
/// `purchase` and credits `deposit`.
pub fn derive_kind(tx: &Transaction) -> Kind {
    if tx.memo_only {
        return Kind::Other;
    }
    match tx.source_type {
        "transfer" => return Kind::Transfer,
        "reconciliation" => return Kind::Adjustment,
        _ => {}
    }
    if tx.check_number.is_some() {
        return Kind::Check;
    }
    if matches!(tx.mcc.map(|m| m.get()), Some(6010 | 6011)) {
        return Kind::Atm;
    }
    let credit = !tx.amount.is_negative();
    let category = tx.category.as_deref().unwrap_or("");
    if credit && (category == "Income/Paycheck" || has_word(&tx.description, &["PAYROLL", "SALARY", "PAYCHECK"])) {
        return Kind::Payroll;
    }
    if credit && (category == "Income/Interest Income" || has_word(&tx.description, &["INTEREST"])) {
        return Kind::Interest;
    }
    if !credit && (category.starts_with("Fees & Charges") || has_word(&tx.description, &["FEE", "FEES"])) {
        return Kind::Fee;
    }
    if category == "Transfer" || category.starts_with("Transfer/") || has_word(&tx.description, &["TRANSFER", "XFER"]) {
        return Kind::Transfer;
    }
    if credit {
        Kind::Deposit
    } else {
        Kind::Purchase
    }
}
