use bankpipe_config::{CategoriesConfig, RuleConfig};
use bankpipe_model::{Currency, Kind, Mcc, Money, Transaction};

use super::*;

fn tx(amount: &str, mcc: Option<u16>, labels: &[&str], merchant: Option<&str>, description: &str) -> Transaction {
    let amount = Money::parse(amount, Currency::USD).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    let mut t = Transaction::bare_posted("truv", "acc", description, amount, date);
    t.merchant_name = merchant.map(str::to_owned);
    t.mcc = mcc.map(|m| Mcc::new(u64::from(m)).unwrap());
    t.source_categories = labels.iter().map(|s| s.to_string()).collect();
    t
}

fn cat(c: &Categorizer, mut t: Transaction) -> (String, &'static str, Kind, Decision, Transaction) {
    let d = c.categorize(&mut t);
    (t.category.as_deref().unwrap().to_owned(), t.category_source.as_str(), t.kind, d, t)
}

// ---- the MCC table ----

#[test]
fn every_public_mcc_is_mapped_to_a_taxonomy_category() {
    let c = Categorizer::builtin();
    let list = include_str!("../../../../fixtures/reference/mcc_codes.csv");
    let mut reader = csv::Reader::from_reader(list.as_bytes());
    let mut n = 0;
    for r in reader.records() {
        let code: u16 = r.unwrap()[0].parse().unwrap();
        let row = c.mcc_table().get(Mcc::new(u64::from(code)).unwrap());
        assert!(row.is_some(), "MCC {code:04} is not mapped");
        n += 1;
    }
    assert_eq!(n, 981, "the public-domain list has 981 codes");
    // Every target exists: the table is validated against the taxonomy at parse time.
    for row in c.mcc_table().rows() {
        let cat = c.taxonomy().get(row.category);
        assert!(cat.sub.is_some(), "row {:04} maps to a parent only", row.from);
    }
}

#[test]
fn well_known_codes_map_as_expected() {
    let c = Categorizer::builtin();
    for (code, expected) in [
        (5411, "Food & Dining/Groceries"),
        (5812, "Food & Dining/Restaurants"),
        (5814, "Food & Dining/Fast Food"),
        (5813, "Food & Dining/Alcohol & Bars"),
        (5541, "Auto & Transport/Gas"),
        (5542, "Auto & Transport/Gas"),
        (4111, "Auto & Transport/Public Transportation"),
        (4900, "Bills & Utilities/Utilities"),
        (4814, "Bills & Utilities/Mobile Phone"),
        (6011, "Uncategorized/Cash"),
        (8011, "Health & Fitness/Doctor"),
        (5912, "Health & Fitness/Pharmacy"),
        (3000, "Travel/Air Travel"),
        (3350, "Travel/Air Travel"),
        (3351, "Travel/Rental Car & Taxi"),
        (3500, "Travel/Rental Car & Taxi"),
        (3501, "Travel/Hotel"),
        (3999, "Travel/Hotel"),
    ] {
        let row = c.mcc_table().get(Mcc::new(code).unwrap()).unwrap_or_else(|| panic!("{code} unmapped"));
        assert_eq!(&*c.taxonomy().get(row.category).path, expected, "MCC {code}");
    }
    assert!(c.mcc_table().get(Mcc::new(1).unwrap()).is_none());
}

#[test]
fn taxonomy_is_the_union_of_both_truv_documents() {
    let t = Taxonomy::builtin();
    // Only in seed 001:
    for path in [
        "Bills & Utilities/Domain Names",
        "Income/Gig Economy",
        "Kids/Toys",
        "Pets/Veterinary",
        "Business Services/Shipping",
    ] {
        assert!(t.by_path(path).is_some(), "{path}");
    }
    // In both:
    for path in ["Food & Dining/Coffee Shops", "Transfer/P2P", "Uncategorized/Check", "Taxes/Sales Tax"] {
        assert!(t.by_path(path).is_some(), "{path}");
    }
    assert!(t.by_path("Food & Dining/Pizza").is_none());
}

#[test]
fn bad_tables_are_refused_with_the_line() {
    let t = Taxonomy::builtin();
    let head = "mcc_from,mcc_to,category,subcategory,description\n";
    let e = MccTable::parse(&format!("{head}5411,5411,Food & Dining,Pizza,x\n"), "m.csv", &t).unwrap_err().to_string();
    assert!(e.contains("m.csv: line 2") && e.contains("Food & Dining/Pizza"), "{e}");
    let e = MccTable::parse(
        &format!("{head}5400,5420,Food & Dining,Groceries,x\n5411,5411,Food & Dining,Groceries,y\n"),
        "m.csv",
        &t,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 3") && e.contains("5411"), "{e}");
}

// ---- priority ----

#[test]
fn a_source_label_under_the_mcc_parent_refines_the_subcategory() {
    let c = Categorizer::builtin();
    let (category, source, kind, d, _) =
        cat(&c, tx("-4.75", Some(5814), &["Food & Dining", "Coffee Shops"], Some("Starbucks"), "Starbucks #1234"));
    assert_eq!(
        (category.as_str(), source, kind, d),
        ("Food & Dining/Coffee Shops", "mcc+source", Kind::Purchase, Decision::MccAndSource)
    );
}

#[test]
fn a_source_label_under_another_parent_is_ignored_for_the_mcc() {
    let c = Categorizer::builtin();
    let (category, source, _, d, _) = cat(&c, tx("-20.00", Some(5411), &["Transfer"], None, "CORNER GROCER"));
    assert_eq!((category.as_str(), source), ("Food & Dining/Groceries", "mcc"));
    assert_eq!(d, Decision::Mcc { ignored_label: true });
    let (category, source, ..) = cat(&c, tx("-20.00", Some(5814), &[], None, "BURGER BARN"));
    assert_eq!((category.as_str(), source), ("Food & Dining/Fast Food", "mcc"));
}

#[test]
fn without_an_mcc_the_source_label_decides_and_unknown_labels_are_kept() {
    let mut cfg = CategoriesConfig::default();
    cfg.source_labels.insert("Salary".into(), "Income/Paycheck".into());
    let c = Categorizer::new(&[], &cfg, None).unwrap();
    let (category, source, kind, ..) = cat(&c, tx("2500.00", None, &["Income", "Paycheck"], None, "ACME"));
    assert_eq!((category.as_str(), source, kind), ("Income/Paycheck", "source", Kind::Payroll));
    let (category, source, ..) = cat(&c, tx("2500.00", None, &["Salary"], None, "ACME"));
    assert_eq!((category.as_str(), source), ("Income/Paycheck", "source"));
    let (category, ..) = cat(&c, tx("-5.00", None, &["Groceries"], None, "x"));
    assert_eq!(category, "Food & Dining/Groceries", "a unique subcategory name resolves");
    let (category, source, _, d, _) = cat(&c, tx("-5.00", None, &["Dining out"], None, "x"));
    assert_eq!((category.as_str(), source), ("Dining out", "source"));
    assert_eq!(d, Decision::Source { known: false, mapped: false });
    let (category, source, ..) = cat(&c, tx("-5.00", Some(1), &[], None, "x"));
    assert_eq!((category.as_str(), source), ("Uncategorized", "default"), "an MCC outside the table is no MCC");
}

fn rule(name: &str, category: &str) -> RuleConfig {
    RuleConfig { name: Some(name.into()), category: category.into(), ..RuleConfig::default() }
}

#[test]
fn rules_come_first_and_the_first_match_wins() {
    let rules = vec![
        RuleConfig { match_merchant: Some("^blue bottle".into()), ..rule("coffee", "Food & Dining/Coffee Shops") },
        RuleConfig {
            mcc_range: Some([5811, 5814]),
            sign: Some("debit".into()),
            ..rule("eating", "Food & Dining/Restaurants")
        },
        RuleConfig {
            match_description: Some("rent".into()),
            amount_max: Some("-500.00".into()),
            kind: Some("transfer".into()),
            payee: Some("Landlord".into()),
            ..rule("rent", "Home/Mortgage & Rent")
        },
    ];
    let c = Categorizer::new(&rules, &CategoriesConfig::default(), None).unwrap();
    // Matches rules 0 and 1: the first wins, over the MCC and the source label too.
    let (category, source, _, d, _) =
        cat(&c, tx("-6.00", Some(5814), &["Food & Dining", "Fast Food"], Some("BLUE BOTTLE COFFEE"), "x"));
    assert_eq!((category.as_str(), source, d), ("Food & Dining/Coffee Shops", "rule", Decision::Rule(0)));
    let (category, _, _, d, _) = cat(&c, tx("-30.00", Some(5812), &[], Some("Trattoria"), "x"));
    assert_eq!((category.as_str(), d), ("Food & Dining/Restaurants", Decision::Rule(1)));
    // A credit at 5812 fails rule 1's sign condition: the MCC decides.
    let (_, source, ..) = cat(&c, tx("30.00", Some(5812), &[], Some("Trattoria"), "refund"));
    assert_eq!(source, "mcc");
    // Conditions are ANDed: description matches, amount too small in magnitude.
    let (_, source, ..) = cat(&c, tx("-100.00", None, &[], None, "RENT APRIL"));
    assert_eq!(source, "default");
    let (category, _, kind, d, t) = cat(&c, tx("-1500.00", None, &[], None, "Rent April"));
    assert_eq!((category.as_str(), kind, d), ("Home/Mortgage & Rent", Kind::Transfer, Decision::Rule(2)));
    assert_eq!(t.merchant_name.as_deref(), Some("Landlord"), "payee rename");
}

#[test]
fn invalid_rules_are_refused_naming_the_rule() {
    let check = |r: RuleConfig, needles: &[&str]| {
        let e = Categorizer::new(&[r], &CategoriesConfig::default(), None).unwrap_err().to_string();
        for n in needles {
            assert!(e.contains(n), "{e:?} lacks {n:?}");
        }
    };
    check(
        RuleConfig { match_merchant: Some("(unclosed".into()), ..rule("bad-re", "Transfer") },
        &["bad-re", "match_merchant", "(unclosed"],
    );
    check(RuleConfig { mcc: Some(5411), ..rule("nope", "Food & Dining/Pizza") }, &["nope", "category", "Pizza"]);
    check(RuleConfig { category: "Transfer".into(), ..RuleConfig::default() }, &["rules[0]", "at least one condition"]);
    check(RuleConfig { sign: Some("up".into()), ..rule("s", "Transfer") }, &["sign", "up"]);
    check(RuleConfig { mcc: Some(1), kind: Some("gift".into()), ..rule("k", "Transfer") }, &["kind", "gift"]);
    check(RuleConfig { amount_min: Some("1e3".into()), ..rule("a", "Transfer") }, &["amount_min", "1e3"]);
}

// ---- kind ----

#[test]
fn kinds_follow_mcc_type_check_category_and_description() {
    let c = Categorizer::builtin();
    let kind = |t: Transaction| cat(&c, t).2;
    assert_eq!(kind(tx("-60.00", Some(6011), &[], None, "ATM")), Kind::Atm);
    let mut check = tx("-1200.00", None, &[], None, "CHECK 1042");
    check.check_number = Some("1042".into());
    assert_eq!(kind(check), Kind::Check);
    assert_eq!(kind(tx("-35.00", None, &["Fees & Charges", "Late Fee"], None, "x")), Kind::Fee);
    assert_eq!(kind(tx("-3.00", None, &[], None, "MONTHLY SERVICE FEE")), Kind::Fee);
    assert_eq!(kind(tx("0.42", None, &[], None, "INTEREST PAYMENT")), Kind::Interest);
    assert_eq!(kind(tx("2100.00", None, &[], None, "ACME PAYROLL")), Kind::Payroll);
    assert_eq!(kind(tx("-200.00", None, &[], None, "ONLINE XFER TO SAVINGS")), Kind::Transfer);
    assert_eq!(kind(tx("-9.99", Some(5999), &[], None, "AMAZON")), Kind::Purchase);
    assert_eq!(kind(tx("9.99", Some(5999), &[], None, "AMAZON")), Kind::Deposit);
    let mut memo = tx("0.00", None, &[], None, "BALANCE INQUIRY");
    memo.memo_only = true;
    assert_eq!(kind(memo), Kind::Other);
    let mut leg = tx("-500.00", None, &[], None, "Monthly savings");
    leg.source_type = "transfer";
    assert_eq!(kind(leg), Kind::Transfer);
}

// ---- explain ----

#[test]
fn explain_names_what_decided() {
    let rules = vec![RuleConfig {
        match_merchant: Some("^blue bottle".into()),
        ..rule("coffee", "Food & Dining/Coffee Shops")
    }];
    let c = Categorizer::new(&rules, &CategoriesConfig::default(), None).unwrap();
    let explain = |t: Transaction| {
        let (.., d, t) = cat(&c, t);
        c.explain(&t, &d)
    };
    assert_eq!(
        explain(tx("-5.50", None, &[], Some("Blue Bottle Coffee"), "x")),
        "rule \"coffee\" (merchant ~ /^blue bottle/i) -> Food & Dining/Coffee Shops; kind purchase"
    );
    assert_eq!(
        explain(tx("-4.75", Some(5814), &["Food & Dining", "Coffee Shops"], None, "x")),
        "MCC 5814 (Fast Food Restaurants) -> Food & Dining/Fast Food; source label \"Food & Dining/Coffee Shops\" refines the subcategory -> Food & Dining/Coffee Shops; kind purchase"
    );
    assert_eq!(
        explain(tx("-20.00", Some(5411), &["Transfer"], None, "x")),
        "MCC 5411 (Grocery Stores, Supermarkets) -> Food & Dining/Groceries; source label \"Transfer\" is not under that parent and is ignored; kind purchase"
    );
    assert_eq!(
        explain(tx("-300.00", Some(3058), &[], None, "x")),
        format!("MCC 3058 ({}, row 3000-3350) -> Travel/Air Travel; kind purchase", "Airlines (private-use range)")
    );
    assert_eq!(
        explain(tx("-5.00", None, &["Dining out"], None, "x")),
        "no MCC; source label \"Dining out\" is not in the taxonomy and is kept as written; kind purchase"
    );
    assert_eq!(
        explain(tx("-5.00", None, &[], None, "x")),
        "no rule, no MCC and no source label -> Uncategorized; kind purchase"
    );
}

// ---- sink maps ----

#[test]
fn sink_maps_default_to_the_subcategory_and_validate_keys() {
    let mut cfg = CategoriesConfig::default();
    cfg.trupocket.insert("Food & Dining/Coffee Shops".into(), "Coffee".into());
    cfg.mibudge.insert("Food & Dining/Groceries".into(), "Groceries".into());
    let c = Categorizer::new(&[], &cfg, None).unwrap();
    assert_eq!(c.sink_maps.trupocket("Food & Dining/Coffee Shops"), "Coffee");
    assert_eq!(c.sink_maps.trupocket("Food & Dining/Restaurants"), "Restaurants");
    assert_eq!(c.sink_maps.trupocket("Transfer"), "Transfer");
    assert_eq!(c.sink_maps.mibudge("Food & Dining/Groceries"), Some("Groceries"));
    assert_eq!(c.sink_maps.mibudge("Food & Dining/Restaurants"), None);
    let mut bad = CategoriesConfig::default();
    bad.mibudge.insert("Food/Snacks".into(), "Snacks".into());
    let e = Categorizer::new(&[], &bad, None).unwrap_err().to_string();
    assert!(e.contains("categories.mibudge") && e.contains("Food/Snacks"), "{e}");
}

#[test]
fn a_rule_naming_a_template_matches_every_link_of_it_and_nothing_else() {
    let text = "[[sources]]\nname = \"bank\"\nkind = \"truv\"\nbase_url = \"https://prod.truv.com\"\n\
                client_id_env = \"A\"\nsecret_env = \"B\"\n\
                links = [{ link_id = \"L-1\", name = \"alice\" }, { link_id = \"L-2\", name = \"bob\" }]\n\
                [[sources]]\nname = \"bank.carol\"\nkind = \"firefly\"\nbase_url = \"https://ff.example\"\ntoken_env = \"F\"\n\
                [[sources]]\nname = \"bankx\"\nkind = \"firefly\"\nbase_url = \"https://ff.example\"\ntoken_env = \"F\"\n\
                [[rules]]\nname = \"bob only\"\nsource = \"bank.bob\"\nmatch_merchant = \"^grocer\"\ncategory = \"Food & Dining/Groceries\"\n\
                [[rules]]\nname = \"the bank's users\"\nsource = \"bank\"\ncategory = \"Food & Dining/Coffee Shops\"\n";
    let config = bankpipe_config::Config::parse(text, std::path::Path::new("b.toml")).unwrap();
    let c = Categorizer::new(&config.rules, &config.categories, None).unwrap().with_sources(&config.sources);
    let row = |source: &str, merchant: &str| {
        let mut t = tx("-4.50", None, &[], Some(merchant), "x");
        t.source = source.into();
        cat(&c, t)
    };
    assert_eq!(row("bank.alice", "Cafe").3, Decision::Rule(1), "a link of the template");
    assert_eq!(row("bank.bob", "Cafe").3, Decision::Rule(1));
    assert_eq!(row("bank.bob", "Grocer").3, Decision::Rule(0), "a rule may still name one link");
    assert_eq!(row("bank.alice", "Grocer").3, Decision::Rule(1));
    for other in ["bank.carol", "bankx"] {
        assert_eq!(row(other, "Cafe").3, Decision::Default, "{other} is no link of the template");
    }
    // Without the sources, a template name matches no row.
    let bare = Categorizer::new(&config.rules, &config.categories, None).unwrap();
    let mut t = tx("-4.50", None, &[], Some("Cafe"), "x");
    t.source = "bank.alice".into();
    assert_eq!(bare.categorize(&mut t), Decision::Default);
}
