//! A small realistic merchant catalogue: (name, MCC, Truv category path,
//! typical amount range in minor units, tip-prone).

pub(super) struct Merchant {
    pub name: &'static str,
    pub mcc: u16,
    pub category: [&'static str; 2],
    pub min_minor: i64,
    pub max_minor: i64,
    pub tips: bool,
    pub weight: u32,
}

const fn m(
    name: &'static str,
    mcc: u16,
    category: [&'static str; 2],
    min_minor: i64,
    max_minor: i64,
    tips: bool,
    weight: u32,
) -> Merchant {
    Merchant { name, mcc, category, min_minor, max_minor, tips, weight }
}

pub(super) const MERCHANTS: &[Merchant] = &[
    m("Whole Foods Market", 5411, ["Food & Dining", "Groceries"], 1_500, 25_000, false, 14),
    m("Trader Joe's", 5411, ["Food & Dining", "Groceries"], 1_000, 15_000, false, 10),
    m("Starbucks", 5814, ["Food & Dining", "Coffee Shops"], 300, 1_500, false, 12),
    m("McDonald's", 5814, ["Food & Dining", "Fast Food"], 500, 2_500, false, 6),
    m("Trattoria Roma", 5812, ["Food & Dining", "Restaurants"], 2_000, 15_000, true, 6),
    m("The Tap Room", 5813, ["Food & Dining", "Alcohol & Bars"], 1_200, 9_000, true, 3),
    m("Shell", 5541, ["Auto & Transport", "Gas"], 2_000, 9_000, true, 6),
    m("Chevron", 5542, ["Auto & Transport", "Gas"], 2_000, 9_000, true, 3),
    m("Metro Transit", 4111, ["Auto & Transport", "Public Transportation"], 250, 12_000, false, 5),
    m("City Power & Light", 4900, ["Bills & Utilities", "Utilities"], 4_000, 25_000, false, 2),
    m("Verizon Wireless", 4814, ["Bills & Utilities", "Mobile Phone"], 3_500, 12_000, false, 2),
    m("CVS Pharmacy", 5912, ["Health & Fitness", "Pharmacy"], 500, 8_000, false, 4),
    m("Dr. Alvarez Family Practice", 8011, ["Health & Fitness", "Doctor"], 2_000, 30_000, false, 1),
    m("Amazon", 5999, ["Shopping", "Hobbies"], 800, 40_000, false, 8),
    m("Uniqlo", 5651, ["Shopping", "Clothing"], 1_500, 20_000, false, 3),
    m("Delta Air Lines", 3058, ["Travel", "Air Travel"], 9_000, 90_000, false, 1),
    m("Marriott", 3509, ["Travel", "Hotel"], 12_000, 80_000, false, 1),
    m("ATM Withdrawal", 6011, ["Uncategorized", "Cash"], 2_000, 40_000, false, 2),
    m("Netflix", 4899, ["Bills & Utilities", "Television"], 999, 2_299, false, 2),
];

/// Sum of all weights.
pub(super) fn total_weight() -> u32 {
    MERCHANTS.iter().map(|m| m.weight).sum()
}

/// The merchant at a weighted position `0..total_weight()`.
pub(super) fn pick(mut at: u32) -> &'static Merchant {
    for m in MERCHANTS {
        if at < m.weight {
            return m;
        }
        at -= m.weight;
    }
    &MERCHANTS[0]
}
