use std::path::Path;

use super::*;

#[test]
fn the_design_example_loads() {
    let text = include_str!("../../../config/bankpipe.example.toml");
    let c = Config::parse(text, Path::new("bankpipe.example.toml")).unwrap();
    assert_eq!(c.store.database_url, "sqlite://bankpipe.db");
    assert_eq!(c.sync.overlap_days, 14);
    assert_eq!(c.sources.len(), 2);
    assert_eq!(c.sinks.len(), 2);
    assert!(!c.rules.is_empty());
}

#[test]
fn empty_file_gets_defaults() {
    let c = Config::parse("", Path::new("x.toml")).unwrap();
    assert_eq!((c.sync.timezone.as_str(), c.sync.overlap_days), ("UTC", 14));
}

#[test]
fn errors_name_the_file_and_key() {
    let e = Config::parse("[sync]\noverlap_dayz = 3\n", Path::new("conf/b.toml")).unwrap_err().to_string();
    assert!(e.contains("conf/b.toml") && e.contains("overlap_dayz"), "{e}");
    let e = Config::parse("[sync]\ntimezone = \"Mars/Olympus\"\n", Path::new("b.toml")).unwrap_err().to_string();
    assert!(e.contains("sync.timezone") && e.contains("Mars/Olympus"), "{e}");
    let e = Config::parse("[[rules]]\nmatch_merchant = \"x\"\n", Path::new("b.toml")).unwrap_err().to_string();
    assert!(e.contains("category"), "{e}");
    let one = "name=\"a\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"T\"\n";
    let dup = format!("[[sources]]\n{one}[[sources]]\n{one}");
    let e = Config::parse(&dup, Path::new("b.toml")).unwrap_err().to_string();
    assert!(e.contains("sources[1].name"), "{e}");
}

#[test]
fn each_kind_needs_its_keys() {
    let e = Config::parse("[[sources]]\nname=\"t\"\nkind=\"truv\"\nbase_url=\"https://prod.truv.com\"\nlink_id=\"x\"\nclient_id_env=\"A\"\n", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.toml") && e.contains("sources[0].secret_env") && e.contains("Truv"), "{e}");
    let e = Config::parse(
        "[[sources]]\nname=\"f\"\nkind=\"firefly\"\nbase_url=\"firefly.example.com\"\ntoken_env=\"T\"\n",
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sources[0].base_url") && e.contains("https://"), "{e}");
    let e = Config::parse(
        "[[sinks]]\nname=\"m\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\n",
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sinks[0].password_env"), "{e}");
}

#[test]
fn trupocket_refuses_deliver_pending_and_says_why() {
    let tp = "[[sinks]]\nname=\"tp\"\nkind=\"trupocket\"\nbase_url=\"https://api.trupocket.app/v1\"\ntoken_env=\"P\"\nhousehold_id=\"h\"\n";
    assert!(Config::parse(tp, Path::new("d.toml")).is_ok());
    let e = Config::parse(&format!("{tp}deliver_pending = true\n"), Path::new("d.toml")).unwrap_err().to_string();
    assert!(e.contains("d.toml") && e.contains("sinks[0].deliver_pending") && e.contains("no update or delete"), "{e}");
    let mb = "[[sinks]]\nname=\"m\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\npassword_env=\"P\"\ndeliver_pending = true\n";
    assert!(Config::parse(mb, Path::new("d.toml")).is_ok(), "mibudge can delete, so it can correct");
}

/// Each sink kind takes exactly its own keys: a key of another kind, or an
/// unknown one, is refused naming the entry, the sink, the key and its value.
#[test]
fn a_sink_takes_only_its_kinds_keys() {
    let mb = "[[sinks]]\nname=\"mb\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\npassword_env=\"P\"\n";
    let tp = "[[sinks]]\nname=\"tp\"\nkind=\"trupocket\"\nbase_url=\"https://t.example/v1\"\ntoken_env=\"T\"\nhousehold_id=\"h\"\n";
    let c = Config::parse(&format!("{tp}{mb}"), Path::new("k.toml")).unwrap();
    match (&c.sinks[0].kind, &c.sinks[1].kind) {
        (SinkKind::Trupocket(t), SinkKind::Mibudge(m)) => {
            assert_eq!((t.household_id.as_str(), t.currency.as_str(), t.create_categories), ("h", "USD", false));
            assert_eq!((m.login_env.var(), m.login_field.as_str()), ("L", "email"));
        }
        other => panic!("{other:?}"),
    }
    let e = Config::parse(&format!("{tp}{mb}household_id = \"2BKH\"\n"), Path::new("k.toml")).unwrap_err().to_string();
    assert!(
        e.contains("k.toml")
            && e.contains("sinks[1].household_id = \"2BKH\"")
            && e.contains("sink \"mb\" is kind = \"mibudge\"")
            && e.contains("belongs to a trupocket sink"),
        "{e}"
    );
    let e = Config::parse(&format!("{tp}create_accounts = true\nlogin_field = \"username\"\n"), Path::new("k.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sinks[0].login_field = \"username\"") && e.contains("belongs to a mibudge sink"), "{e}");
    let e = Config::parse(&format!("{mb}pasword_env = \"P2\"\n"), Path::new("k.toml")).unwrap_err().to_string();
    assert!(
        e.contains("sinks[0].pasword_env = \"P2\"") && e.contains("no such key") && e.contains("password_env"),
        "{e}"
    );
    let file = "[[sinks]]\nname=\"out\"\nkind=\"file\"\nbase_url=\"out\"\n";
    assert!(Config::parse(file, Path::new("k.toml")).unwrap().sinks[0].is_file());
    let e = Config::parse(&format!("{file}[sinks.accounts]\n\"a\" = \"b\"\n"), Path::new("k.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sinks[0].accounts") && e.contains("is kind = \"file\""), "{e}");
    let e =
        Config::parse("[[sinks]]\nname=\"x\"\nkind=\"ynab\"\nbase_url=\"https://y.example\"\n", Path::new("k.toml"))
            .unwrap_err()
            .to_string();
    assert!(e.contains("sinks[0].kind = \"ynab\"") && e.contains("trupocket, mibudge, file"), "{e}");
    let e = Config::parse(&format!("{tp}create_categories = \"yes\"\n"), Path::new("k.toml")).unwrap_err().to_string();
    assert!(e.contains("sinks[0].create_categories") && e.contains("sink \"tp\""), "{e}");
    let e =
        Config::parse(&tp.replace("token_env=\"T\"", "token_env=\" \""), Path::new("k.toml")).unwrap_err().to_string();
    assert!(e.contains("sinks[0].token_env") && e.contains("names no variable"), "{e}");
}

/// Credentials are read once, by `resolve_sink_secrets`: a variable not set
/// (or empty) is an error naming the sink, key and variable; the value is
/// held as a secret that `Debug` never shows.
#[test]
fn sink_secrets_are_read_once_and_never_shown() {
    let text = "[[sinks]]\nname=\"mb\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\n\
                login_env=\"BP_TEST_SECRET_LOGIN\"\npassword_env=\"BP_TEST_SECRET_PASSWORD\"\n";
    let mut c = Config::parse(text, Path::new("s.toml")).unwrap();
    assert!(
        matches!(&c.sinks[0].kind, SinkKind::Mibudge(m) if m.password_env.value().is_none()),
        "not read on loading"
    );
    std::env::set_var("BP_TEST_SECRET_LOGIN", "ann@example.com");
    std::env::remove_var("BP_TEST_SECRET_PASSWORD");
    let e = c.resolve_sink_secrets().unwrap_err();
    assert!(matches!(e, ConfigError::Secret { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("sink \"mb\"")
            && e.contains("BP_TEST_SECRET_PASSWORD")
            && e.contains("password_env")
            && e.contains("not set"),
        "{e}"
    );
    std::env::set_var("BP_TEST_SECRET_PASSWORD", "");
    assert!(c.resolve_sink_secrets().unwrap_err().to_string().contains("is empty"));
    std::env::set_var("BP_TEST_SECRET_PASSWORD", "hunter2-secret");
    c.resolve_sink_secrets().unwrap();
    use secrecy::ExposeSecret;
    let SinkKind::Mibudge(m) = &c.sinks[0].kind else { unreachable!() };
    assert_eq!(m.password_env.value().map(|v| v.expose_secret().to_owned()).as_deref(), Some("hunter2-secret"));
    let shown = format!("{c:?}");
    assert!(
        shown.contains("BP_TEST_SECRET_PASSWORD") && !shown.contains("hunter2") && !shown.contains("ann@"),
        "{shown}"
    );
}

#[test]
fn account_links_name_known_sources() {
    let src = "[[sources]]\nname=\"f\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"T\"\n";
    let ok = format!("{src}[[account_links]]\naccounts = [\"f:1\", \"f:2\"]\n");
    let c = Config::parse(&ok, Path::new("c.toml")).unwrap();
    assert_eq!(c.account_links[0].sides().unwrap().1, ("f".to_owned(), "2".to_owned()));
    let bad = format!("{src}[[account_links]]\naccounts = [\"f:1\", \"truv:2\"]\n");
    let e = Config::parse(&bad, Path::new("c.toml")).unwrap_err().to_string();
    assert!(e.contains("account_links[0].accounts") && e.contains("\"truv\""), "{e}");
    let bad = format!("{src}[[account_links]]\naccounts = [\"f:1\"]\n");
    assert!(Config::parse(&bad, Path::new("c.toml")).is_err());
}

#[test]
fn a_database_url_of_another_kind_is_a_config_error_naming_file_and_key() {
    for url in ["mysql://u:hunter2@h/db", ""] {
        let e = Config::parse(&format!("[store]\ndatabase_url = \"{url}\"\n"), Path::new("e.toml")).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{text}");
        assert!(text.contains("e.toml") && text.contains("store.database_url") && !text.contains("hunter2"), "{text}");
    }
    let c = Config::parse("[store]\ndatabase_url_env = \"BP_TEST_DB_URL_UNSET\"\n", Path::new("e.toml")).unwrap();
    let e = c.store.url().unwrap_err();
    assert!(e.contains("BP_TEST_DB_URL_UNSET") && e.contains("store.database_url_env"), "{e}");
    std::env::set_var("BP_TEST_DB_URL_SET", "postgres://bp@db/bank");
    let c = Config::parse("[store]\ndatabase_url_env = \"BP_TEST_DB_URL_SET\"\n", Path::new("e.toml")).unwrap();
    assert_eq!(c.store.url().unwrap(), "postgres://bp@db/bank");
}

/// Every key of every configuration table appears in
/// `config/bankpipe.example.toml` (as `key = …`, commented or not, or as a
/// `[table]` header): adding a key without documenting it there fails here.
#[test]
fn the_example_config_shows_every_key() {
    use serde_reflection::{ContainerFormat, Tracer, TracerConfig};
    let example = include_str!("../../../config/bankpipe.example.toml");
    let mut tracer = Tracer::new(TracerConfig::default());
    tracer.trace_simple_type::<SourceKindConfig>().expect("traced");
    // `[[sinks]]` entries are read as tables and checked per kind, which a
    // tracer cannot follow: each section type is traced on its own, and
    // `Config`'s keys are its field list.
    tracer.trace_simple_type::<StoreConfig>().expect("traced");
    tracer.trace_simple_type::<SyncConfig>().expect("traced");
    tracer.trace_simple_type::<SourceConfig>().expect("traced");
    tracer.trace_simple_type::<crate::sinks::SinkCommon>().expect("traced");
    tracer.trace_simple_type::<TrupocketConfig>().expect("traced");
    tracer.trace_simple_type::<MibudgeConfig>().expect("traced");
    tracer.trace_simple_type::<RuleConfig>().expect("traced");
    tracer.trace_simple_type::<CategoriesConfig>().expect("traced");
    tracer.trace_simple_type::<DedupeSettings>().expect("traced");
    tracer.trace_simple_type::<AccountLinkConfig>().expect("traced");
    let registry = tracer.registry().expect("complete");
    let shown = |name: &str| {
        [format!("{name} ="), format!("[{name}]"), format!("[[{name}]]"), format!(".{name}]")]
            .iter()
            .any(|needle| example.contains(needle.as_str()))
    };
    let mut missing: Vec<String> =
        crate::sinks::struct_fields::<Config>().iter().filter(|f| !shown(f)).map(|f| format!("Config.{f}")).collect();
    assert!(crate::sinks::struct_fields::<Config>().contains(&"sinks"), "Config's keys are listed");
    for (container, format) in &registry {
        let ContainerFormat::Struct(fields) = format else { continue };
        for field in fields {
            if !shown(&field.name) {
                missing.push(format!("{container}.{}", field.name));
            }
        }
    }
    assert!(missing.is_empty(), "keys missing from config/bankpipe.example.toml: {missing:?}");
}

// ---- many links: template sources ----

const SINKS: &str = "[[sinks]]\nname=\"mb\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\npassword_env=\"P\"\n\
                     [sinks.accounts]\n\"pre-existing\" = \"mb-0\"\n\
                     [[sinks]]\nname=\"tp\"\nkind=\"trupocket\"\nbase_url=\"https://t.example/v1\"\ntoken_env=\"T\"\nhousehold_id=\"h\"\n";

/// A Truv template named `bank` with `body` (links / links_file lines), the
/// two sinks `mb` and `tp`, and `extra` TOML.
fn template(body: &str, extra: &str) -> String {
    format!(
        "[[sources]]\nname=\"bank\"\nkind=\"truv\"\nbase_url=\"https://prod.truv.com\"\nclient_id_env=\"TID\"\nsecret_env=\"TSEC\"\n\
         {body}\n{SINKS}{extra}"
    )
}

/// `config` written as `dir/conf/bankpipe.toml` beside `files` (name, text), then loaded.
fn load_with(config: &str, files: &[(&str, &[u8])]) -> (tempfile::TempDir, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(conf.join("links")).unwrap();
    for (name, text) in files {
        std::fs::write(conf.join(name), text).unwrap();
    }
    let path = conf.join("bankpipe.toml");
    std::fs::write(&path, config).unwrap();
    let result = Config::load(&path);
    (dir, result)
}

fn load_err(config: &str, files: &[(&str, &[u8])]) -> (ConfigError, String) {
    let (_dir, r) = load_with(config, files);
    let e = r.expect_err("the configuration must be refused");
    let text = e.to_string();
    (e, text)
}

fn has_all(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{text:?} lacks {n:?}");
    }
}

#[test]
fn inline_links_become_one_source_each() {
    let body = "links = [\n  { link_id = \"L-alice\", name = \"alice\" },\n  { link_id = \"L-bob\", name = \"bob_2\", accounts = { mb = { \"acc-1\" = \"mb-1\" } } },\n]";
    let extra = "[[sources]]\nname=\"ff\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"F\"\n";
    let c = Config::parse(&template(body, extra), Path::new("x/b.toml")).unwrap();
    let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bank.alice", "bank.bob_2", "ff"], "the template's place, then the other sources");
    let bob = &c.sources[1];
    assert_eq!(bob.link_id.as_deref(), Some("L-bob"));
    assert_eq!(bob.template.as_deref(), Some("bank"));
    assert_eq!((bob.client_id_env.as_deref(), bob.secret_env.as_deref()), (Some("TID"), Some("TSEC")));
    assert_eq!(bob.base_url, "https://prod.truv.com");
    assert!(bob.links.is_empty() && bob.links_file.is_none());
    assert_eq!(c.sources[2].template, None);
    let mb = &c.sinks[0].accounts;
    assert_eq!(mb.get("bank.bob_2:acc-1").map(String::as_str), Some("mb-1"));
    assert_eq!(mb.get("pre-existing").map(String::as_str), Some("mb-0"), "the sink's own mappings stay");
    assert_eq!(mb.len(), 2);
}

const CSV: &str = "link_id,name,sink,source_account,sink_account\n\
                   L-1,alice,mb,a-chk,mb-chk\n\
                   L-2,bob,,,\n\
                   L-1,alice,tp,a-chk,tp-chk\n\
                   L-3, carol ,mb,c-sav,mb-sav\n\
                   L-1,alice,mb,a-sav,mb-sav-a\n";

#[test]
fn a_csv_links_file_relative_to_the_config_gives_links_and_mappings() {
    let (_d, c) = load_with(&template("links_file = \"links/users.CSV\"", ""), &[("links/users.CSV", CSV.as_bytes())]);
    let c = c.unwrap();
    let got: Vec<(&str, Option<&str>)> = c.sources.iter().map(|s| (s.name.as_str(), s.link_id.as_deref())).collect();
    assert_eq!(got, [("bank.alice", Some("L-1")), ("bank.bob", Some("L-2")), ("bank.carol", Some("L-3"))]);
    let mb: Vec<(&str, &str)> = c.sinks[0].accounts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        mb,
        [
            ("bank.alice:a-chk", "mb-chk"),
            ("bank.alice:a-sav", "mb-sav-a"),
            ("bank.carol:c-sav", "mb-sav"),
            ("pre-existing", "mb-0")
        ]
    );
    let tp: Vec<(&str, &str)> = c.sinks[1].accounts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(tp, [("bank.alice:a-chk", "tp-chk")]);
}

#[test]
fn a_json_links_file_gives_links_with_optional_accounts_and_inline_links_add_to_it() {
    let json = r#"[
      {"link_id": "L-1", "name": "alice", "accounts": {"tp": {"a-chk": "tp-chk"}}},
      {"link_id": "L-2", "name": "bob"}
    ]"#;
    let body = "links = [{ link_id = \"L-0\", name = \"zed\" }]\nlinks_file = \"links.json\"";
    let (_d, c) = load_with(&template(body, ""), &[("links.json", json.as_bytes())]);
    let c = c.unwrap();
    let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bank.zed", "bank.alice", "bank.bob"], "inline links first, then the file's");
    assert_eq!(c.sinks[1].accounts.get("bank.alice:a-chk").map(String::as_str), Some("tp-chk"));
    assert!(c.sources.iter().all(|s| s.template.as_deref() == Some("bank")));
}

#[test]
fn an_empty_links_file_is_a_template_of_no_links() {
    let (_d, c) = load_with(
        &template("links_file = \"l.csv\"", ""),
        &[("l.csv", b"link_id,name,sink,source_account,sink_account\n")],
    );
    assert!(c.unwrap().sources.is_empty());
}

#[test]
fn a_mapping_may_repeat_but_never_contradict() {
    // The sink already maps the same account (bare or qualified) to the same id: fine.
    let same = template(
        "links = [{ link_id = \"L-1\", name = \"alice\", accounts = { mb = { \"pre-existing\" = \"mb-0\" } } }]",
        "",
    );
    assert!(Config::parse(&same, Path::new("b.toml")).is_ok());
    // ... to another id: refused, naming where.
    let other = template(
        "links = [{ link_id = \"L-1\", name = \"alice\", accounts = { mb = { \"pre-existing\" = \"mb-9\" } } }]",
        "",
    );
    let e = Config::parse(&other, Path::new("b.toml")).unwrap_err().to_string();
    has_all(
        &e,
        &["b.toml", "sources[0].links[0].accounts.\"mb\".\"pre-existing\"", "\"mb-9\"", "already mapped to \"mb-0\""],
    );
    // Two rows of one CSV file disagree.
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,mb,a,x\nL-1,alice,mb,a,y\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["l.csv", "line 3", "sink_account = \"y\"", "already mapped to \"x\""]);
    // A qualified mapping in the sink itself disagrees with the link's.
    let extra = "[[sinks]]\nname=\"mb2\"\nkind=\"mibudge\"\nbase_url=\"https://m.example\"\nlogin_env=\"L\"\npassword_env=\"P\"\n\
                 [sinks.accounts]\n\"bank.alice:a\" = \"held\"\n";
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,mb2,a,other\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", extra), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["l.csv", "line 2", "\"other\"", "already mapped to \"held\""]);
}

#[test]
fn a_template_is_refused_with_its_own_link_id_or_account_ids_or_another_kind() {
    let e = Config::parse(
        &template("link_id = \"L-x\"\nlinks = [{ link_id = \"L-1\", name = \"a\" }]", ""),
        Path::new("b.toml"),
    )
    .unwrap_err()
    .to_string();
    has_all(&e, &["b.toml", "sources[0].link_id", "\"L-x\"", "template", "no link_id of its own"]);
    let e = Config::parse(&template("account_ids = [\"x\"]\nlinks_file = \"l.csv\"", ""), Path::new("b.toml"))
        .unwrap_err()
        .to_string();
    has_all(&e, &["sources[0].account_ids", "\"x\""]);
    let ff = "[[sources]]\nname=\"ff\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"F\"\nlinks_file=\"l.csv\"\n";
    let e = Config::parse(ff, Path::new("b.toml")).unwrap_err().to_string();
    has_all(&e, &["sources[0].kind = \"firefly\"", "links_file", "truv"]);
    let e = Config::parse(
        &template("links = [{ link_id = \"L-1\", name = \"a\" }]", "").replace("\"bank\"", "\"ba:nk\""),
        Path::new("b.toml"),
    )
    .unwrap_err()
    .to_string();
    has_all(&e, &["sources[0].name", "\"ba:nk\""]);
    // Without links a Truv source still needs its link_id.
    let e = Config::parse(&template("", ""), Path::new("b.toml")).unwrap_err().to_string();
    has_all(&e, &["sources[0].link_id", "required"]);
}

#[test]
fn a_link_without_a_link_id_is_refused_in_every_format() {
    let e = Config::parse(&template("links = [{ name = \"a\" }]", ""), Path::new("b.toml")).unwrap_err().to_string();
    has_all(&e, &["b.toml", "link_id"]);
    let e = Config::parse(&template("links = [{ link_id = \"\", name = \"a\" }]", ""), Path::new("b.toml"))
        .unwrap_err()
        .to_string();
    has_all(&e, &["sources[0].links[0].link_id", "required"]);
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,a,,,\n,b,,,\n";
    let (e, text) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    assert!(matches!(e, ConfigError::Links { .. }), "{text}");
    has_all(&text, &["l.csv: line 3: link_id = \"\": required"]);
    let json = r#"[{"link_id": "L-1", "name": "a"}, {"name": "b"}]"#;
    let (_, text) = load_err(&template("links_file = \"l.json\"", ""), &[("l.json", json.as_bytes())]);
    has_all(&text, &["l.json", "[1]", "missing field `link_id`", "line 1"]);
    let json = r#"[{"link_id": 42, "name": "a"}]"#;
    let (_, text) = load_err(&template("links_file = \"l.json\"", ""), &[("l.json", json.as_bytes())]);
    has_all(&text, &["l.json", "[0].link_id", "42"]);
    let json = r#"[{"link_id": "L/../x", "name": "a"}]"#;
    let (_, text) = load_err(&template("links_file = \"l.json\"", ""), &[("l.json", json.as_bytes())]);
    has_all(&text, &["l.json: [0]: link_id = \"L/../x\""]);
}

#[test]
fn link_names_must_be_well_formed_and_unique() {
    let e = Config::parse(&template("links = [{ link_id = \"L-1\", name = \"al ice\" }]", ""), Path::new("b.toml"))
        .unwrap_err()
        .to_string();
    has_all(&e, &["b.toml", "sources[0].links[0].name", "\"al ice\"", "A-Z a-z 0-9 _ -"]);
    let long = "n".repeat(65);
    let csv = format!("link_id,name,sink,source_account,sink_account\nL-1,{long},,,\n");
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["l.csv: line 2: name", &long[..60]]);
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,a.b,,,\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["line 2: name = \"a.b\""]);
    // The same name twice: in the file, and across inline links and the file.
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,,,\nL-2,bob,,,\nL-3,alice,,,\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["l.csv: line 4: name = \"alice\"", "unique", "line 2"]);
    let body = "links = [{ link_id = \"L-9\", name = \"bob\" }]\nlinks_file = \"l.csv\"";
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,bob,,,\n";
    let (_, e) = load_err(&template(body, ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["l.csv: line 2: name = \"bob\"", "sources[0].links[0]"]);
    // The same link twice under two names.
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,,,\n";
    let (_, e) = load_err(
        &template("links = [{ link_id = \"L-1\", name = \"al\" }]\nlinks_file = \"l.csv\"", ""),
        &[("l.csv", csv.as_bytes())],
    );
    has_all(&e, &["l.csv: line 2: link_id = \"L-1\"", "already listed"]);
    // Rows of one link disagree on its name.
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,,,\nL-1,alicia,mb,a,b\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["line 3: name = \"alicia\"", "agree on name", "line 2 has \"alice\""]);
    // A concrete name that another source already has.
    let plain =
        "[[sources]]\nname=\"bank.alice\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"F\"\n";
    let e = Config::parse(&template("links = [{ link_id = \"L-1\", name = \"alice\" }]", plain), Path::new("b.toml"))
        .unwrap_err()
        .to_string();
    has_all(&e, &["sources[0].links[0].name", "\"bank.alice\" is already taken by sources[1]"]);
}

#[test]
fn a_mapping_names_a_known_sink_and_both_accounts() {
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,mb,a,b\nL-2,bob,nosuch,a,b\n";
    let (e, text) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    assert!(matches!(&e, ConfigError::Links { file, .. } if file.ends_with("conf/l.csv")), "{text}");
    has_all(&text, &["l.csv: line 3: sink = \"nosuch\": no [[sinks]] entry"]);
    let e = Config::parse(
        &template("links = [{ link_id = \"L-1\", name = \"a\", accounts = { zz = { x = \"y\" } } }]", ""),
        Path::new("b.toml"),
    )
    .unwrap_err()
    .to_string();
    has_all(&e, &["b.toml", "sources[0].links[0].accounts = \"zz\""]);
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,mb,,b\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["line 2: source_account = \"\""]);
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,alice,mb,a,\n";
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["line 2: sink_account = \"\""]);
}

#[test]
fn a_malformed_links_file_is_refused_naming_it() {
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", b"id,name\nL-1,a\n")]);
    has_all(&e, &["l.csv: line 1: header = \"id,name\"", "link_id,name,sink,source_account,sink_account"]);
    let csv = "link_id,name,sink,source_account,sink_account\nL-1,a,,,\nL-2,b\n";
    let (e, text) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    assert!(matches!(e, ConfigError::Parse { .. }), "{text}");
    has_all(&text, &["l.csv", "line 3"]);
    let (_, e) = load_err(&template("links_file = \"l.json\"", ""), &[("l.json", b"{\"link_id\": \"L\"}")]);
    has_all(&e, &["l.json", "an array of links"]);
    let (_, e) = load_err(&template("links_file = \"l.json\"", ""), &[("l.json", b"[] trailing")]);
    has_all(&e, &["l.json", "trailing"]);
    let (_, e) = load_err(&template("links_file = \"l.txt\"", ""), &[("l.txt", b"")]);
    has_all(&e, &["bankpipe.toml", "sources[0].links_file = \"l.txt\"", ".csv or .json"]);
}

#[test]
fn a_missing_or_oversized_or_odd_links_file_is_refused() {
    let (e, text) = load_err(&template("links_file = \"gone.csv\"", ""), &[]);
    assert!(matches!(e, ConfigError::Invalid { .. }), "{text}");
    has_all(&text, &["bankpipe.toml", "sources[0].links_file = \"gone.csv\"", "cannot read", "conf/gone.csv"]);
    // A directory (or FIFO, device) is never read.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d.csv")).unwrap();
    let config = dir.path().join("b.toml");
    std::fs::write(&config, template("links_file = \"d.csv\"", "")).unwrap();
    let text = Config::load(&config).unwrap_err().to_string();
    has_all(&text, &["b.toml", "sources[0].links_file = \"d.csv\"", "not a regular file"]);
    // One byte over the cap (a sparse file: no disk used).
    let big = dir.path().join("big.csv");
    std::fs::File::create(&big).unwrap().set_len(MAX_LINKS_FILE_BYTES + 1).unwrap();
    let config = dir.path().join("b.toml");
    std::fs::write(&config, template("links_file = \"big.csv\"", "")).unwrap();
    let text = Config::load(&config).unwrap_err().to_string();
    has_all(&text, &["b.toml", "sources[0].links_file = \"big.csv\"", "67108865 bytes", "at most 67108864"]);
}

#[test]
fn more_links_than_the_cap_are_refused() {
    let mut csv = String::from("link_id,name,sink,source_account,sink_account\n");
    for i in 0..=MAX_LINKS {
        csv.push_str(&format!("L{i},n{i},,,\n"));
    }
    let (_, e) = load_err(&template("links_file = \"l.csv\"", ""), &[("l.csv", csv.as_bytes())]);
    has_all(&e, &["l.csv", &format!("line {}", MAX_LINKS + 2), "more than 100000 links"]);
    // The cap counts across formats: one inline link and a file at the cap.
    let mut json = String::from("[");
    for i in 0..MAX_LINKS {
        json.push_str(&format!("{}{{\"link_id\":\"L{i}\",\"name\":\"n{i}\"}}", if i > 0 { "," } else { "" }));
    }
    json.push(']');
    let body = "links = [{ link_id = \"X\", name = \"x\" }]\nlinks_file = \"l.json\"";
    let (_, e) = load_err(&template(body, ""), &[("l.json", json.as_bytes())]);
    has_all(&e, &["l.json", "more than 100000 links"]);
}

#[test]
fn account_links_name_concrete_links_not_templates() {
    let body = "links = [{ link_id = \"L-1\", name = \"alice\" }]";
    let ff = "[[sources]]\nname=\"ff\"\nkind=\"firefly\"\nbase_url=\"https://ff.example\"\ntoken_env=\"F\"\n";
    let ok = template(body, &format!("{ff}[[account_links]]\naccounts = [\"bank.alice:chk\", \"ff:1\"]\n"));
    let c = Config::parse(&ok, Path::new("b.toml")).unwrap();
    assert_eq!(c.account_links[0].sides().unwrap().0, ("bank.alice".to_owned(), "chk".to_owned()));
    let bad = template(body, &format!("{ff}[[account_links]]\naccounts = [\"bank:chk\", \"ff:1\"]\n"));
    let e = Config::parse(&bad, Path::new("b.toml")).unwrap_err().to_string();
    has_all(&e, &["account_links[0].accounts", "\"bank\" is a template", "bank.LINK"]);
}

#[test]
fn the_example_links_file_loads_with_the_example_sinks() {
    let example = include_str!("../../../config/bankpipe.example.toml");
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/links.example.csv");
    let text = format!(
        "{example}\n[[sources]]\nname = \"users\"\nkind = \"truv\"\nbase_url = \"https://prod.truv.com\"\n\
         client_id_env = \"A\"\nsecret_env = \"B\"\nlinks_file = {csv:?}\n"
    );
    let c = Config::parse(&text, Path::new("bankpipe.example.toml")).unwrap();
    let links: Vec<&str> = c.sources.iter().filter(|s| s.template.is_some()).map(|s| s.name.as_str()).collect();
    assert_eq!(links, ["users.alice", "users.bob"]);
    let mibudge = c.sinks.iter().find(|s| s.name == "mibudge").unwrap();
    assert_eq!(mibudge.accounts.keys().filter(|k| k.starts_with("users.alice:")).count(), 2);
}
