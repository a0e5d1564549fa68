//! Load at several connection counts, one count after another, and the
//! table that sets them side by side (issue 25). A client or server that
//! stalls from some number of connections on shows as a cliff between two
//! rows, where a run at one count shows only slow figures, or none: the
//! inbound bench at 64 connections hid an 88 ms stall that users' clients
//! hit from 16 on.
//!
//! A level is N senders, one per connection, each sending requests back to
//! back (closed loop) or, with a rate, on a fixed schedule (open loop), for
//! an untimed warm-up and then the measured seconds. A bench implements
//! [`Sender`] for its requests, [`run`] drives one level, and [`table`]
//! prints one row per level.

use super::report::{by_second, per_sec, thousands};
use anyhow::{Result, anyhow};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The connection counts measured when `--connections` is not given.
pub const DEFAULT_CONNECTIONS: [usize; 6] = [1, 8, 16, 32, 64, 256];
/// The most connections one level may open: each is a socket of this
/// process and one of the server's, and both have a file limit.
const MAX_CONNECTIONS: usize = 4096;
/// A request slower than this counts in the slow seconds, and it is the p99
/// every level from [`BASE_CONNECTIONS`] up must stay under, µs.
pub const SLOW_US: u32 = 20_000;
/// The row the scaling check compares the higher connection counts with.
const BASE_CONNECTIONS: usize = 8;

/// Parses `--connections 1,8,16`: counts from 1 to 4096, each once, run in
/// the order given.
pub fn parse_connections(list: &str) -> Result<Vec<usize>, String> {
    let mut counts = Vec::new();
    for item in list.split(',').map(str::trim) {
        match item.parse::<usize>() {
            Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) && !counts.contains(&n) => counts.push(n),
            Ok(n) if counts.contains(&n) => {
                return Err(format!("--connections lists {n} twice ({list:?})"));
            }
            _ => {
                return Err(format!(
                    "--connections takes a comma list of connection counts from 1 to \
                     {MAX_CONNECTIONS}, such as 1,8,16 (got {item:?} in {list:?})"
                ));
            }
        }
    }
    Ok(counts)
}

/// `1, 8, 16` (for headers).
pub fn list(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What sends one bench's requests on one connection.
pub trait Sender: Send + 'static {
    /// What the bench keeps of an accepted request (its id, say), to check
    /// afterwards that the server did what it accepted.
    type Accepted: Send + 'static;

    /// Sends this connection's request number `n` (from 1) and reads the
    /// whole answer: what is kept of it if accepted, else what went wrong.
    fn send(&mut self, n: u64) -> impl Future<Output = Result<Self::Accepted, String>> + Send;
}

/// How long a level runs, and how fast it sends.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The same load first, untimed: pools and connections open, statements
    /// are prepared, as in a service that has been running.
    pub warmup: Duration,
    pub measured: Duration,
    /// Requests per second in all, spread evenly over the connections (open
    /// loop, latency timed from when each request was due); `None`: back to
    /// back.
    pub rate: Option<u64>,
}

/// What one level measured.
pub struct Level<A> {
    pub connections: usize,
    /// From the end of the warm-up until the last sender had its last answer.
    pub elapsed: Duration,
    /// Every accepted measured request: when it started (ms after the warm-up
    /// ended) and its latency (µs), in the order they started.
    pub samples: Vec<(u32, u32)>,
    pub accepted: Vec<A>,
    /// Accepted in the warm-up: not measured, but checked with the others.
    pub warm_accepted: Vec<A>,
    pub not_accepted: u64,
    pub warm_not_accepted: u64,
    pub first_error: Option<String>,
}

/// When a paced connection sends: first at `first`, then every `every`.
#[derive(Clone, Copy)]
struct Schedule {
    first: Instant,
    every: Duration,
}

/// Runs one level: a task per sender (one connection each), the warm-up,
/// then the measured seconds. Stops early on Ctrl-C in `bench outbound`.
pub async fn run<S: Sender>(senders: Vec<S>, plan: Plan) -> Result<Level<S::Accepted>> {
    let connections = senders.len();
    let start = Instant::now();
    let t0 = start + plan.warmup;
    let deadline = t0 + plan.measured;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(w, sender)| {
            // Paced: each connection sends every `connections / rate`
            // seconds, the connections staggered evenly.
            let schedule = plan.rate.map(|r| Schedule {
                first: start + Duration::from_secs_f64(w as f64 / r as f64),
                every: Duration::from_secs_f64(connections as f64 / r as f64),
            });
            tokio::spawn(connection(sender, schedule, t0, deadline))
        })
        .collect();
    let mut level = Level::empty(connections);
    for task in tasks {
        let one = task
            .await
            .map_err(|e| anyhow!("a sender task failed: {e}"))?;
        level.samples.extend(one.samples);
        level.accepted.extend(one.accepted);
        level.warm_accepted.extend(one.warm_accepted);
        level.not_accepted += one.not_accepted;
        level.warm_not_accepted += one.warm_not_accepted;
        level.first_error = level.first_error.or(one.first_error);
    }
    level.elapsed = t0.elapsed();
    level.samples.sort_unstable();
    Ok(level)
}

/// One connection's sender until `deadline` (the requests started before
/// `t0` are the warm-up's). Back to back, a request is timed from the call
/// that builds and sends it to the last byte of its answer; paced, from when
/// it was due, so a late send counts as latency.
async fn connection<S: Sender>(
    mut sender: S,
    schedule: Option<Schedule>,
    t0: Instant,
    deadline: Instant,
) -> Level<S::Accepted> {
    let mut out = Level::empty(1);
    let mut n = 0u64;
    while Instant::now() < deadline && !super::STOP.load(Ordering::Relaxed) {
        n += 1;
        let t = match schedule {
            Some(s) => {
                let due = s.first + s.every * u32::try_from(n - 1).unwrap_or(u32::MAX);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let outcome = sender.send(n).await;
        let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
        let warm = t < t0;
        match outcome {
            Ok(kept) if warm => out.warm_accepted.push(kept),
            Ok(kept) => {
                let ms = u32::try_from(t.duration_since(t0).as_millis()).unwrap_or(u32::MAX);
                out.samples.push((ms, us));
                out.accepted.push(kept);
            }
            Err(e) => {
                if warm {
                    out.warm_not_accepted += 1;
                } else {
                    out.not_accepted += 1;
                }
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

impl<A> Level<A> {
    /// Nothing measured yet.
    fn empty(connections: usize) -> Self {
        Self {
            connections,
            elapsed: Duration::ZERO,
            samples: Vec::new(),
            accepted: Vec::new(),
            warm_accepted: Vec::new(),
            not_accepted: 0,
            warm_not_accepted: 0,
            first_error: None,
        }
    }

    /// The level's line of the table.
    pub fn row(&self) -> Row {
        let mut latencies: Vec<u32> = self.samples.iter().map(|&(_, us)| us).collect();
        latencies.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest latency with at least q of them at or below it.
            let rank = (q * latencies.len() as f64).ceil() as usize;
            latencies[rank.clamp(1, latencies.len()) - 1]
        };
        Row {
            connections: self.connections,
            per_sec: per_sec(self.accepted.len() as u64, self.elapsed),
            latency_us: (!latencies.is_empty())
                .then(|| [at(0.50), at(0.90), at(0.99), at(0.999), at(1.0)]),
            not_accepted: self.not_accepted,
        }
    }

    /// The line printed as the level finishes: its row in words.
    pub fn progress(&self) -> String {
        let row = self.row();
        let mut line = format!(
            "{}: {} accepted/s",
            connections(self.connections),
            thousands(row.per_sec.round() as u64)
        );
        if let Some([p50, _, p99, _, max]) = row.latency_us {
            line += &format!(", p50 {}, p99 {}, max {}", ms(p50), ms(p99), ms(max));
        }
        line += &format!(", {} not accepted", thousands(self.not_accepted));
        if self.warm_not_accepted > 0 {
            line += &format!(
                " (and {} in the warm-up)",
                thousands(self.warm_not_accepted)
            );
        }
        line
    }

    /// The seconds that had requests over 20 ms, worst first, in words (a
    /// stall comes together in a second or two; a spread-out tail does
    /// not); `None` when no request was that slow.
    pub fn slow_seconds(&self) -> Option<String> {
        let slow = by_second(
            self.samples
                .iter()
                .filter(|&&(_, us)| us > SLOW_US)
                .map(|&(ms, _)| u64::from(ms / 1000)),
        );
        if slow.is_empty() {
            return None;
        }
        let worst: Vec<String> = slow
            .iter()
            .take(5)
            .map(|(sec, n)| format!("{sec} s: {}", thousands(*n)))
            .collect();
        Some(format!(
            "requests over {} ms by the second they started, worst first: {} ({} of {} seconds had any)",
            SLOW_US / 1000,
            worst.join(", "),
            slow.len(),
            self.elapsed.as_secs().max(1)
        ))
    }

    /// The measured requests, one line each in the order they started: ms
    /// after the warm-up ended, and latency in µs.
    pub fn timeline(&self) -> String {
        self.samples
            .iter()
            .map(|(ms, us)| format!("{ms} {us}\n"))
            .collect()
    }
}

/// One level's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub connections: usize,
    pub per_sec: f64,
    /// p50, p90, p99, p99.9 and max, µs; `None` when nothing was accepted.
    pub latency_us: Option<[u32; 5]>,
    pub not_accepted: u64,
}

/// The table of the levels, a line each, with a header line.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:>11}  {:>10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>12}\n",
        "connections", "accepted/s", "p50", "p90", "p99", "p99.9", "max", "not accepted"
    );
    for row in rows {
        let latency: Vec<String> = match row.latency_us {
            Some(l) => l.iter().map(|&us| ms(us)).collect(),
            None => vec!["-".into(); 5],
        };
        out += &format!(
            "{:>11}  {:>10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>12}\n",
            row.connections,
            thousands(row.per_sec.round() as u64),
            latency[0],
            latency[1],
            latency[2],
            latency[3],
            latency[4],
            thousands(row.not_accepted)
        );
    }
    out
}

/// Issue 25's test of a back-to-back table: every level above 8 connections
/// accepts at least as many requests/s as the 8-connection level, with p99
/// under 20 ms. `None` when the table has no 8-connection row or none above
/// it; else the rows that fail, in words (none: it passed).
pub fn scaling_check(rows: &[Row]) -> Option<Vec<String>> {
    let base = rows.iter().find(|r| r.connections == BASE_CONNECTIONS)?;
    let above: Vec<&Row> = rows
        .iter()
        .filter(|r| r.connections > BASE_CONNECTIONS)
        .collect();
    if above.is_empty() {
        return None;
    }
    let mut failures = Vec::new();
    for row in above {
        let mut why = Vec::new();
        if row.per_sec < base.per_sec {
            why.push(format!(
                "{} accepted/s, below the {} of {BASE_CONNECTIONS} connections",
                thousands(row.per_sec.round() as u64),
                thousands(base.per_sec.round() as u64)
            ));
        }
        match row.latency_us {
            Some([_, _, p99, _, _]) if p99 < SLOW_US => {}
            Some([_, _, p99, _, _]) => {
                why.push(format!("p99 {}, not under {} ms", ms(p99), SLOW_US / 1000))
            }
            None => why.push("nothing accepted".into()),
        }
        if !why.is_empty() {
            failures.push(format!(
                "{} connections: {}",
                row.connections,
                why.join("; ")
            ));
        }
    }
    Some(failures)
}

/// Prints the table under `title`, then the scaling check when the levels
/// ran back to back (paced, every level is offered the same rate, and
/// throughput says nothing).
pub fn print_table(title: &str, rows: &[Row], back_to_back: bool) {
    println!();
    println!("{title}");
    print!("{}", table(rows));
    if !back_to_back {
        return;
    }
    match scaling_check(rows) {
        None => crate::ui::info(&format!(
            "no scaling check: it compares the levels above {BASE_CONNECTIONS} connections with the {BASE_CONNECTIONS}-connection level"
        )),
        Some(failures) if failures.is_empty() => crate::ui::info(&format!(
            "scaling: every level above {BASE_CONNECTIONS} connections accepts at least as many requests/s as {BASE_CONNECTIONS}, with p99 under {} ms",
            SLOW_US / 1000
        )),
        Some(failures) => crate::ui::warn(&format!(
            "scaling: levels above {BASE_CONNECTIONS} connections should accept at least as many requests/s as {BASE_CONNECTIONS}, with p99 under {} ms; {}",
            SLOW_US / 1000,
            failures.join("; ")
        )),
    }
}

/// `1 connection`, `16 connections`.
pub fn connections(n: usize) -> String {
    format!("{n} connection{}", if n == 1 { "" } else { "s" })
}

/// `12.34 ms`.
fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_lists() {
        assert_eq!(parse_connections("1,8,16").unwrap(), [1, 8, 16]);
        assert_eq!(parse_connections(" 64 , 1 ").unwrap(), [64, 1]);
        assert_eq!(parse_connections("256").unwrap(), [256]);
        assert_eq!(parse_connections("4096").unwrap(), [4096]);
        for bad in ["", "1,,8", "0", "1,0", "8,x", "-1", "1.5", "4097", "1,8,"] {
            assert!(parse_connections(bad).is_err(), "{bad:?}");
        }
        assert!(parse_connections("8,16,8").unwrap_err().contains("twice"));
        assert_eq!(list(&DEFAULT_CONNECTIONS), "1, 8, 16, 32, 64, 256");
    }

    fn level(connections: usize, latencies_ms: &[u32], seconds: u64) -> Level<()> {
        let mut level = Level::empty(connections);
        level.elapsed = Duration::from_secs(seconds);
        level.samples = latencies_ms
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l * 1000))
            .collect();
        level.accepted = vec![(); latencies_ms.len()];
        level
    }

    #[test]
    fn rows_have_nearest_rank_percentiles() {
        let ms: Vec<u32> = (1..=1000).rev().collect();
        let row = level(16, &ms, 2).row();
        assert_eq!(row.per_sec, 500.0);
        assert_eq!(
            row.latency_us,
            Some([500_000, 900_000, 990_000, 999_000, 1_000_000])
        );
        assert_eq!(level(1, &[], 1).row().latency_us, None);
        let text = table(&[row, level(1, &[], 1).row()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("accepted/s") && lines[0].contains("p99.9"));
        assert!(lines[1].trim_start().starts_with("16"));
        assert!(lines[1].contains("990.00 ms") && lines[1].contains("1000.00 ms"));
        assert!(lines[2].contains('-'));
    }

    #[test]
    fn progress_names_the_slow_seconds() {
        let mut l = level(8, &[1, 30, 2], 3);
        l.samples[1].0 = 2_500;
        let text = l.progress();
        assert!(text.starts_with("8 connections: 1 accepted/s"), "{text}");
        assert!(text.ends_with("0 not accepted"), "{text}");
        let slow = l.slow_seconds().unwrap();
        assert!(slow.contains("2 s: 1 (1 of 3 seconds had any)"), "{slow}");
        assert_eq!(level(1, &[1], 1).slow_seconds(), None);
        assert!(level(1, &[1], 1).progress().starts_with("1 connection: "));
    }

    #[test]
    fn the_scaling_check_compares_with_8_connections() {
        let row = |connections, per_sec, p99_ms: u32| Row {
            connections,
            per_sec,
            latency_us: Some([1000, 1000, p99_ms * 1000, p99_ms * 1000, p99_ms * 1000]),
            not_accepted: 0,
        };
        let good = [row(1, 900.0, 2), row(8, 5000.0, 5), row(16, 5000.0, 9)];
        assert_eq!(scaling_check(&good), Some(vec![]));
        // The independent client's table: a cliff at 16.
        let cliff = [row(8, 5000.0, 5), row(16, 192.0, 92), row(64, 6000.0, 12)];
        let failures = scaling_check(&cliff).unwrap();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].starts_with("16 connections: 192 accepted/s"));
        assert!(failures[0].contains("p99 92.00 ms"));
        assert_eq!(scaling_check(&[row(1, 1.0, 1), row(16, 1.0, 1)]), None);
        assert_eq!(scaling_check(&[row(1, 1.0, 1), row(8, 1.0, 1)]), None);
    }
}
