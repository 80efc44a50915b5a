//! `bankpipe record`: live pages of one source into a recorded directory.
//!
//! Each page is written as `page-000001.json`, … exactly as received except
//! that account numbers are cut to their last four characters (`mask`,
//! `iban`, `account_number` and the Firefly `*_iban`/`*_number` fields) and
//! any occurrence of the source's own credentials is replaced by
//! `[REDACTED]` — so recordings can be committed as fixtures.

use std::path::Path;

use anyhow::{Context, Result};
use bankpipe_http::{HttpClient, Policy};
use bankpipe_model::account::mask_account_number;
use bankpipe_sources::live::{LiveError, Window};
use serde_json::Value;

use crate::cli::RecordArgs;
use crate::setup::{self, ConfigProblem};

pub fn run(args: &RecordArgs) -> Result<()> {
    let path = &args.config.config;
    let config = setup::load_config(Some(path))?;
    if let Some(link) = config.sources.iter().find(|s| s.template.as_deref() == Some(args.source.as_str())) {
        return Err(ConfigProblem(format!(
            "{}: {:?} is a template of links; `record` records one source at a time, e.g. --source {}",
            path.display(),
            args.source,
            link.name
        ))
        .into());
    }
    let mut source = setup::select_sources(&config, path, std::slice::from_ref(&args.source))?.remove(0);
    source.page_size = args.page_size;
    let source_config = config.sources.iter().find(|s| s.name == args.source).expect("selected above");
    let secrets = secret_values(source_config);
    prepare_dir(&args.out)?;

    let runtime = setup::runtime()?;
    let client = HttpClient::new(Policy::default())?;
    let window = Window { from: args.from, to: args.to };
    let mut written = 0u64;
    let stats = runtime.block_on(source.walk::<anyhow::Error, _>(&client, window, async |page| {
        written += 1;
        let path = args.out.join(format!("page-{written:06}.json"));
        let text = sanitize(&page.body, &secrets).with_context(|| format!("{}: not JSON", page.url))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        for w in &page.page.warnings {
            crate::diag::warn(w);
        }
        Ok(())
    }));
    let stats = stats.map_err(|e| match e.downcast::<LiveError>() {
        Ok(live) => anyhow::Error::new(live),
        Err(other) => other,
    })?;
    crate::diag::say(format_args!(
        "recorded {} pages ({} records) from {} into {}",
        stats.pages,
        stats.records_read,
        args.source,
        args.out.display()
    ));
    Ok(())
}

/// The values of the credentials this source uses (to scrub from recordings).
fn secret_values(source: &bankpipe_config::SourceConfig) -> Vec<String> {
    [&source.client_id_env, &source.secret_env, &source.token_env]
        .into_iter()
        .flatten()
        .filter_map(|var| std::env::var(var).ok())
        .filter(|v| v.len() >= 4)
        .collect()
}

/// Refuse to mix a recording into a directory that already holds pages.
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let has_pages = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "json"));
        if has_pages {
            return Err(ConfigProblem(format!(
                "{} already holds page files; record into a new directory (mixing walks breaks the pagination chain)",
                dir.display()
            ))
            .into());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Mask account numbers and scrub secrets; returns the JSON text to write.
fn sanitize(body: &[u8], secrets: &[String]) -> Result<String> {
    let mut value: Value = serde_json::from_slice(body)?;
    mask_numbers(&mut value);
    let mut text = value.to_string();
    for s in secrets {
        text = text.replace(s.as_str(), "[REDACTED]");
    }
    text.push('\n');
    Ok(text)
}

fn mask_numbers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.as_str();
                let is_number = k == "mask" || k.ends_with("iban") || (k.ends_with("_number") && k != "check_number");
                match v {
                    Value::String(s) if is_number => *s = mask_account_number(s),
                    _ => mask_numbers(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_numbers_are_cut_to_four_and_secrets_scrubbed() {
        let body = br#"{"accounts":[{"mask":"000123456789"}],"data":[{"attributes":{"transactions":[{"source_iban":"NL91ABNA0417164300","check_number":"123456","note":"key sk_live_abc"}]}}]}"#;
        let text = sanitize(body, &["sk_live_abc".into()]).unwrap();
        assert!(text.contains(r#""mask":"6789""#), "{text}");
        assert!(text.contains(r#""source_iban":"4300""#), "{text}");
        assert!(text.contains(r#""check_number":"123456""#), "check numbers are not account numbers: {text}");
        assert!(!text.contains("sk_live_abc") && text.contains("[REDACTED]"), "{text}");
    }
}
