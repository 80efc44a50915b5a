//! `bankpipe-sim`: run the simulators on 127.0.0.1 for manual use.

use std::path::PathBuf;
use std::time::Duration;

use bankpipe_gen::GenConfig;
use bankpipe_sim::faults::Faults;
use bankpipe_sim::firefly::{FireflyConfig, FireflyData, FireflySim};
use bankpipe_sim::ratelimit::RateLimit;
use bankpipe_sim::trupocket::{TrupocketConfig, TrupocketSim};
use bankpipe_sim::truv::{TruvConfig, TruvData, TruvSim};
use bankpipe_sim::SimServer;
use clap::Parser;

/// Serve faithful Truv, Firefly III, Trupocket and mibudge simulators on 127.0.0.1
/// until interrupted, and print their base URLs and (non-secret, simulator
/// only) credentials.
#[derive(Parser, Debug)]
#[command(
    name = "bankpipe-sim",
    version,
    after_help = "\
Examples:
  bankpipe-sim --truv fixtures/truv/multipage --firefly fixtures/firefly/groups --trupocket --mibudge
  bankpipe-sim --truv-generate 100000 --trupocket --trupocket-limit 10 --trupocket-window 1 --error-rate 0.1
  bankpipe-sim --truv-generate 500 --truv-links 3    # link-0001..link-0003, for a template source"
)]
struct Args {
    /// Serve the transactions of a recorded Truv directory.
    #[arg(long, value_name = "DIR")]
    truv: Option<PathBuf>,
    /// Serve N generated Truv transactions.
    #[arg(long, value_name = "N", conflicts_with = "truv")]
    truv_generate: Option<u64>,
    /// With --truv-generate: serve N links (`link-0001`, …), each its own
    /// generated data (seed + link number), as template sources have.
    #[arg(long, value_name = "N", requires = "truv_generate", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    truv_links: Option<u32>,
    /// Add `daily_totals` to Truv pages.
    #[arg(long)]
    truv_daily_totals: bool,
    /// Serve the groups of a recorded Firefly III directory.
    #[arg(long, value_name = "DIR")]
    firefly: Option<PathBuf>,
    /// Serve N generated Firefly III splits.
    #[arg(long, value_name = "N", conflicts_with = "firefly")]
    firefly_generate: Option<u64>,
    /// Serve a Trupocket API (one household, one checking account).
    #[arg(long)]
    trupocket: bool,
    /// Trupocket calls per window.
    #[arg(long, default_value_t = 1000)]
    trupocket_limit: u64,
    /// Trupocket rate window in seconds (86400 = a day).
    #[arg(long, default_value_t = 86_400)]
    trupocket_window: u64,
    /// Serve a mibudge API (one USD bank account).
    #[arg(long)]
    mibudge: bool,
    /// mibudge access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    mibudge_token_secs: u64,
    /// First port (each simulator takes the next one); 0 = ephemeral ports.
    #[arg(long, default_value_t = 0)]
    port_base: u16,
    /// Probability of an injected 5xx per request.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Latency added to every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability of dropping the connection after processing a request.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Sinks: delay the answer to a successful write by this many
    /// milliseconds after the state change.
    #[arg(long, default_value_t = 0)]
    latency_after_commit_ms: u64,
    /// Sinks: probability of answering a successful write with a truncated,
    /// unparseable JSON body.
    #[arg(long, default_value_t = 0.0)]
    unreadable_rate: f64,
    /// Insert a new record after every source page request.
    #[arg(long)]
    drift: bool,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Accounts of each generated dataset (`--truv-generate`,
    /// `--firefly-generate`); the records are spread over them, so more
    /// accounts cover fewer days.
    #[arg(long, default_value_t = GenConfig::default().accounts, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    accounts: u32,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let faults = Faults {
        error_rate: args.error_rate,
        latency: Duration::from_millis(args.latency_ms),
        drop_after_processing_rate: args.drop_rate,
        latency_after_commit: Duration::from_millis(args.latency_after_commit_ms),
        unreadable_success_rate: args.unreadable_rate,
        drift: args.drift,
        ..Faults::none()
    };
    let gen = |n| GenConfig { transactions: n, seed: args.seed, accounts: args.accounts, ..GenConfig::default() };
    let port = |i: u16| if args.port_base == 0 { 0 } else { args.port_base + i };
    let mut servers = Vec::new();
    let cfg = TruvConfig { daily_totals: args.truv_daily_totals, faults: faults.clone(), ..TruvConfig::default() };
    let truv_links = match (&args.truv, args.truv_generate, args.truv_links) {
        (Some(dir), _, _) => vec![(cfg.link_id.clone(), TruvData::from_recorded(dir)?)],
        (None, Some(n), None) => vec![(cfg.link_id.clone(), TruvData::generated(gen(n)))],
        (None, Some(n), Some(links)) => (1..=links)
            .map(|i| {
                let seed = args.seed.wrapping_add(u64::from(i));
                (format!("link-{i:04}"), TruvData::generated(GenConfig { seed, ..gen(n) }))
            })
            .collect(),
        _ => Vec::new(),
    };
    if !truv_links.is_empty() {
        let ids: Vec<String> = truv_links.iter().map(|(id, _)| id.clone()).collect();
        let sim = TruvSim::with_links(cfg.clone(), truv_links);
        let s = SimServer::start(sim.router(), port(0)).await.map_err(|e| e.to_string())?;
        let shown = match ids.as_slice() {
            [one] => one.clone(),
            [first, .., last] => format!("{first}..{last} ({} links)", ids.len()),
            [] => String::new(),
        };
        println!(
            "truv       {}  link_id={shown} X-Access-Client-Id={} X-Access-Secret={}",
            s.base_url(),
            cfg.client_id,
            cfg.secret
        );
        servers.push(s);
    }
    let firefly_data = match (&args.firefly, args.firefly_generate) {
        (Some(dir), _) => Some(FireflyData::from_recorded(dir)?),
        (None, Some(n)) => Some(FireflyData::generated(gen(n))),
        _ => None,
    };
    if let Some(data) = firefly_data {
        let cfg = FireflyConfig { faults: faults.clone(), ..FireflyConfig::default() };
        let sim = FireflySim::new(cfg.clone(), data);
        let s = SimServer::start(sim.router(), port(1)).await.map_err(|e| e.to_string())?;
        println!("firefly    {}  token={}", s.base_url(), cfg.token);
        servers.push(s);
    }
    if args.trupocket {
        let cfg = TrupocketConfig {
            rate_limit: RateLimit { limit: args.trupocket_limit, window_secs: args.trupocket_window },
            faults: faults.clone(),
            ..TrupocketConfig::default()
        };
        let sim = TrupocketSim::new(cfg.clone());
        let household = sim.seed_household("Home");
        let account = sim.seed_account(&household, "chkg", "Checking");
        let s = SimServer::start(sim.router(), port(2)).await.map_err(|e| e.to_string())?;
        println!("trupocket  {}/v1  token={} household={household} account={account}", s.base_url(), cfg.token);
        servers.push(s);
    }
    if args.mibudge {
        let cfg = bankpipe_sim::mibudge::MibudgeConfig {
            token_lifetime: Duration::from_secs(args.mibudge_token_secs),
            faults: faults.clone(),
            ..bankpipe_sim::mibudge::MibudgeConfig::default()
        };
        let sim = bankpipe_sim::mibudge::MibudgeSim::new(cfg.clone());
        let account = sim.seed_bank_account("Checking", "USD");
        let s = SimServer::start(sim.router(), port(3)).await.map_err(|e| e.to_string())?;
        println!("mibudge    {}  email={} password={} bank_account={account}", s.base_url(), cfg.email, cfg.password);
        servers.push(s);
    }
    if servers.is_empty() {
        return Err(
            "nothing to serve: give --truv/--truv-generate, --firefly/--firefly-generate or --trupocket (see --help)"
                .into(),
        );
    }
    println!("serving; Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    for s in servers {
        s.stop().await;
    }
    Ok(())
}
