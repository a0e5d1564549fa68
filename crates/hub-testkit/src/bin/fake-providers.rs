//! `fake-providers`: the nine fake providers of [`hub_testkit::fakes`] on fixed
//! loopback ports, for an offline demo (`cargo xtask up` starts it).
//!
//! Ports count up from `FAKE_PROVIDERS_BASE_PORT` (default 3901):
//!
//! | offset | port (default) | provider   | base URL                             |
//! |--------|----------------|------------|--------------------------------------|
//! | +0     | 3901           | HUBSPOT    | `http://127.0.0.1:3901`              |
//! | +1     | 3902           | QUICKBOOKS | `http://127.0.0.1:3902`              |
//! | +2     | 3903           | XERO       | `http://127.0.0.1:3903/api.xro/2.0`  |
//! | +3     | 3904           | SAMSARA    | `http://127.0.0.1:3904`              |
//! | +4     | 3905           | NEWSAPI    | `http://127.0.0.1:3905/v2`           |
//! | +5     | 3906           | SALESFORCE | `http://127.0.0.1:3906`              |
//! | +6     | 3907           | ZOHO       | `http://127.0.0.1:3907` (API under `/crm/v2`) |
//! | +7     | 3908           | KEEPTRUCKIN| `http://127.0.0.1:3908/v1`           |
//! | +8     | 3909           | ALPHA_VANTAGE | `http://127.0.0.1:3909` (`/query`) |
//!
//! The five OAuth providers (HubSpot, QuickBooks, Xero, Salesforce, Zoho)
//! also serve their authorization and token endpoints at the real paths on
//! the same port (see `FakeProvider::oauth_config`), for the app whose client
//! id and secret `FakeProvider::oauth_client` gives.
//!
//! Every fake accepts the token (API key for NewsAPI, KeepTruckin and Alpha
//! Vantage) `fake-valid-token`. One
//! line per fake goes to stdout once all listen, e.g.
//! `NEWSAPI http://127.0.0.1:3905/v2 token=fake-valid-token` (QuickBooks and
//! Xero add the realm and tenant id their config needs). Runs until SIGTERM or
//! Ctrl-C, then exits 0; exits 1 when a port cannot be bound, 2 on bad usage.
//!
//! `FAKE_PROVIDERS_BASE_PORT=0` puts each fake on a free port of its own
//! instead (read the URLs from the lines above). `FAKE_PROVIDERS_RECORDING=false`
//! turns off what the fakes keep of every request (`FakeProvider::set_recording`):
//! nobody reads it here, and under load (`cargo xtask bench gateway`) it only
//! grows. `FAKE_PROVIDERS_RECORDS=N` gives every object of every fake `N`
//! generated records (`FakeProvider::set_count`) instead of its small
//! default, so a demo's syncs have data (they are built on demand: 200,000
//! cost nothing until read).

use std::process::ExitCode;

use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};

/// Default first port (`FAKE_PROVIDERS_BASE_PORT`).
const DEFAULT_BASE_PORT: u16 = 3901;

/// The most records `FAKE_PROVIDERS_RECORDS` may ask for per object.
const MAX_RECORDS: u64 = 100_000_000;

/// The highest offset in the layout.
const LAST: u16 = 8;

/// The fixed offset of each fake from the base port (`xtask up` relies on
/// this layout: NewsAPI at +4, Salesforce at +5; new kinds go at the end).
fn offset(kind: Kind) -> u16 {
    match kind {
        Kind::HubSpot => 0,
        Kind::QuickBooks => 1,
        Kind::Xero => 2,
        Kind::Samsara => 3,
        Kind::NewsApi => 4,
        Kind::Salesforce => 5,
        Kind::Zoho => 6,
        Kind::KeepTruckin => 7,
        Kind::AlphaVantage => 8,
        // A kind added to the library but not to this layout yet: after the others.
        _ => LAST + 1,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!(
            "usage: fake-providers\n\n\
             Serves fake HubSpot, QuickBooks, Xero, Samsara, NewsAPI, Salesforce, Zoho, KeepTruckin\n\
             and Alpha Vantage on 127.0.0.1, ports FAKE_PROVIDERS_BASE_PORT (default {DEFAULT_BASE_PORT};\n\
             0: any free ports) to +{LAST}, until SIGTERM or Ctrl-C.\n\
             FAKE_PROVIDERS_RECORDING=false: keep no copy of the requests.\n\
             FAKE_PROVIDERS_RECORDS=N: N generated records in every object of every fake."
        );
        return ExitCode::from(2);
    }
    let base = match std::env::var("FAKE_PROVIDERS_BASE_PORT") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u16>() {
            Ok(port) if port <= u16::MAX - LAST => port,
            _ => {
                eprintln!(
                    "fake-providers: FAKE_PROVIDERS_BASE_PORT must be a port from 1 to {} \
                     (or 0: any free ports), not {v:?}",
                    u16::MAX - LAST
                );
                return ExitCode::from(2);
            }
        },
        _ => DEFAULT_BASE_PORT,
    };
    let recording = match std::env::var("FAKE_PROVIDERS_RECORDING") {
        Ok(v) => match recording_flag(&v) {
            Some(on) => on,
            None => {
                eprintln!(
                    "fake-providers: FAKE_PROVIDERS_RECORDING must be true or false, not {v:?}"
                );
                return ExitCode::from(2);
            }
        },
        Err(_) => true,
    };
    let records = match std::env::var("FAKE_PROVIDERS_RECORDS") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
            Ok(n) if n <= MAX_RECORDS => Some(n),
            _ => {
                eprintln!(
                    "fake-providers: FAKE_PROVIDERS_RECORDS must be a number of records from 0 to {MAX_RECORDS}, not {v:?}"
                );
                return ExitCode::from(2);
            }
        },
        _ => None,
    };

    // Signal handlers first, so a signal during start-up is not fatal.
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-providers: cannot listen for SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut fakes = Vec::with_capacity(Kind::ALL.len());
    for kind in Kind::ALL {
        let port = if base == 0 {
            0
        } else {
            base.saturating_add(offset(kind))
        };
        let addr = format!("127.0.0.1:{port}");
        match FakeProvider::start_on(kind, &addr).await {
            Ok(fake) => {
                fake.set_recording(recording);
                if let Some(n) = records {
                    for object in fake.objects() {
                        fake.set_count(object, n);
                    }
                }
                fakes.push(fake);
            }
            Err(e) => {
                eprintln!(
                    "fake-providers: cannot listen on {addr} for {}: {e}",
                    kind.code()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    for fake in &fakes {
        let mut line = format!(
            "{} {} token={DEFAULT_TOKEN}",
            fake.kind().code(),
            fake.base_url()
        );
        if let Some(config) = fake.config().as_object() {
            for (key, value) in config.iter().filter(|(k, _)| *k != "base_url") {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                line.push_str(&format!(" {key}={value}"));
            }
        }
        println!("{line}");
    }

    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    for fake in fakes {
        fake.stop().await;
    }
    println!("stopped");
    ExitCode::SUCCESS
}

/// `FAKE_PROVIDERS_RECORDING`'s value: `Some(on)`, or `None` when it is
/// neither a yes nor a no (empty counts as the default, on).
fn recording_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::recording_flag;

    #[test]
    fn recording_is_on_unless_turned_off() {
        for on in ["", "true", "1", " ON ", "yes"] {
            assert_eq!(recording_flag(on), Some(true), "{on:?}");
        }
        for off in ["false", "0", "off", "No"] {
            assert_eq!(recording_flag(off), Some(false), "{off:?}");
        }
        assert_eq!(recording_flag("maybe"), None);
    }
}
