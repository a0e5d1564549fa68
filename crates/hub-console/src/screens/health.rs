//! Health Dashboard: every integration and subscription of the page at a
//! glance. Integrations with their status, circuit, rate-limit use, last
//! success and error, and 24 h charts of their error rate and latency
//! (p50/p95) drawn as inline SVG on the server; subscriptions with their
//! status, circuit, backlog and delivery figures; the open circuits of both
//! at the top. It refreshes itself every 10 s and alerts on what changed
//! state since the previous view: the previous states travel with the
//! refresh (hidden fields the page sends back), not in server memory.

use crate::api::{Failure, enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager_named, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::StreamExt;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Registers the dashboard's route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/health", web::get().to(show));
}

const TITLE: &str = "Health Dashboard";
/// Items per list of the page.
const PAGE: usize = 50;
/// API calls under way at once for one view (health and stats of each
/// integration of the page).
const CONCURRENT_CALLS: usize = 16;
/// Earlier changes kept on the page.
const EARLIER: usize = 10;

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One watched thing's state, as remembered between two views.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    /// `i` (integration) or `s` (subscription).
    kind: char,
    id: String,
    name: String,
    status: String,
    circuit: String,
}

impl Watched {
    fn key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }

    /// `i:<id>:<status>:<circuit>` (names are not sent back: they come
    /// with every view).
    fn encode(&self) -> String {
        format!("{}:{}:{}", self.key(), self.status, self.circuit)
    }
}

/// The states a previous view sent back: key → (status, circuit).
fn decode(prev: &str) -> HashMap<String, (String, String)> {
    prev.split(',')
        .filter_map(|e| {
            let mut p = e.splitn(4, ':');
            let (kind, id, status, circuit) = (p.next()?, p.next()?, p.next()?, p.next()?);
            Some((
                format!("{kind}:{id}"),
                (status.to_owned(), circuit.to_owned()),
            ))
        })
        .collect()
}

/// What changed between the previous view's states and `now`'s, as
/// sentences stamped `at`.
fn changes(prev: &HashMap<String, (String, String)>, now: &[Watched], at: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in now {
        let Some((status, circuit)) = prev.get(&w.key()) else {
            continue;
        };
        let what = if w.kind == 'i' {
            "Integration"
        } else {
            "Subscription"
        };
        let mut parts = Vec::new();
        if *status != w.status {
            parts.push(format!("status {status} → {}", w.status));
        }
        if *circuit != w.circuit && !circuit.is_empty() && !w.circuit.is_empty() {
            parts.push(format!("circuit {circuit} → {}", w.circuit));
        }
        if !parts.is_empty() {
            out.push(format!("{at} · {what} {}: {}", w.name, parts.join(", ")));
        }
    }
    out
}

async fn show(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let param = |k: &str| q.get(k).map(String::as_str).filter(|c| !c.is_empty());
    let (cursor, sub_cursor) = (param("cursor"), param("sub_cursor"));
    let here = format!(
        "/console/health{}",
        query(&[
            ("cursor", cursor.unwrap_or_default()),
            ("sub_cursor", sub_cursor.unwrap_or_default())
        ])
    );
    if !is_htmx(&req) {
        return page(Some(&s), TITLE, "health", loading(&here));
    }
    let paged = |base: &str, c: Option<&str>| match c {
        Some(c) => format!("{base}?limit={PAGE}&cursor={}", enc(c)),
        None => format!("{base}?limit={PAGE}"),
    };
    let lists = [
        paged("/api/v1/integrations", cursor),
        paged("/api/v1/webhooks/subscriptions", sub_cursor),
    ];
    let (list, subs) = futures::join!(s.api.get(&lists[0]), s.api.get(&lists[1]));
    let list = match list {
        Ok(v) => v,
        Err(f) => return fragment(error(&f)),
    };
    let rows = list["data"].as_array().cloned().unwrap_or_default();
    // Each integration's health and 24 h statistics: concurrent, at most
    // CONCURRENT_CALLS at once, in the rows' order.
    let paths: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let id = t(r, "id");
            [
                format!("/api/v1/integrations/{id}/health"),
                format!("/api/v1/integrations/{id}/stats"),
            ]
        })
        .collect();
    let answers: Vec<Result<Value, Failure>> = futures::stream::iter(&paths)
        .map(|p| s.api.get(p))
        .buffered(CONCURRENT_CALLS)
        .collect()
        .await;
    let mut healths = Vec::with_capacity(rows.len());
    let mut stats = Vec::with_capacity(rows.len());
    for pair in answers.chunks(2) {
        healths.push(pair[0].clone());
        stats.push(pair[1].clone());
    }
    let now = Utc::now();
    let watched = watch(&rows, &healths, subs.as_ref().ok());
    let at = now.format("%H:%M:%S UTC").to_string();
    let new = changes(&decode(param("prev").unwrap_or_default()), &watched, &at);
    let mut earlier: Vec<String> = param("seen")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(300).collect())
        .collect();
    earlier.truncate(EARLIER);
    let view = View {
        rows: &rows,
        healths: &healths,
        stats: &stats,
        subs: &subs,
        here: &here,
        cursor,
        sub_cursor,
        next: list["next_cursor"].as_str(),
        now,
    };
    board(&view, &watched, &new, &earlier)
}

/// The states of what the view shows.
fn watch(rows: &[Value], healths: &[Result<Value, Failure>], subs: Option<&Value>) -> Vec<Watched> {
    let mut out: Vec<Watched> = rows
        .iter()
        .zip(healths)
        .map(|(r, h)| Watched {
            kind: 'i',
            id: t(r, "id"),
            name: t(r, "name"),
            status: t(r, "status"),
            // Unknown when its health could not be read: not compared.
            circuit: h
                .as_ref()
                .map(|h| t(h, "circuit_state"))
                .unwrap_or_default(),
        })
        .collect();
    if let Some(subs) = subs {
        for r in subs["data"].as_array().into_iter().flatten() {
            out.push(Watched {
                kind: 's',
                id: t(r, "id"),
                name: t(r, "name"),
                status: t(r, "status"),
                circuit: t(r, "circuit_state"),
            });
        }
    }
    out
}

struct View<'a> {
    rows: &'a [Value],
    healths: &'a [Result<Value, Failure>],
    stats: &'a [Result<Value, Failure>],
    subs: &'a Result<Value, Failure>,
    here: &'a str,
    cursor: Option<&'a str>,
    sub_cursor: Option<&'a str>,
    next: Option<&'a str>,
    now: DateTime<Utc>,
}

fn board(v: &View<'_>, watched: &[Watched], new: &[String], earlier: &[String]) -> HttpResponse {
    let prev: Vec<String> = watched.iter().map(Watched::encode).collect();
    let seen: Vec<&String> = new.iter().chain(earlier).take(EARLIER).collect();
    let seen = seen
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let sub_rows = v
        .subs
        .as_ref()
        .ok()
        .and_then(|s| s["data"].as_array().cloned())
        .unwrap_or_default();
    // Integrations by status and by circuit; subscriptions likewise.
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_circuit: BTreeMap<String, usize> = BTreeMap::new();
    for w in watched.iter().filter(|w| w.kind == 'i') {
        *by_status.entry(w.status.clone()).or_default() += 1;
        if !w.circuit.is_empty() {
            *by_circuit.entry(w.circuit.clone()).or_default() += 1;
        }
    }
    let open: Vec<&Watched> = watched
        .iter()
        .filter(|w| matches!(w.circuit.as_str(), "OPEN" | "HALF_OPEN"))
        .collect();
    let since: HashMap<String, String> = sub_rows
        .iter()
        .map(|r| (format!("s:{}", t(r, "id")), t(r, "circuit_opened_at")))
        .collect();
    fragment(html! {
        div #health-board hx-get=(v.here) hx-trigger="every 10s" hx-swap="outerHTML"
            hx-include="#health-prev, #health-seen" {
            input #health-prev type="hidden" name="prev" value=(prev.join(","));
            input #health-seen type="hidden" name="seen" value=(seen);
            @if !new.is_empty() {
                div.error #health-alerts role="alert" {
                    p { strong { "Changed since the last refresh:" } }
                    ul { @for n in new { li { (n) } } }
                }
            }
            @if !earlier.is_empty() {
                details #health-earlier {
                    summary { "Earlier changes (" (earlier.len()) ")" }
                    ul { @for n in earlier { li { (n) } } }
                }
            }
            section #open-circuits aria-labelledby="open-circuits-h" {
                h2 #open-circuits-h { "Open circuits" }
                @if open.is_empty() {
                    p.meta { "No open circuit among the integrations and subscriptions below." }
                } @else {
                    ul { @for w in &open { li {
                        @if w.kind == 'i' {
                            "Integration " a href={"/console/integrations/" (w.id)} { (w.name) }
                        } @else {
                            "Subscription " a href={"/console/webhooks/subscriptions/" (w.id)} { (w.name) }
                        }
                        " " span.badge.bad { (w.circuit) }
                        @if let Some(at) = since.get(&w.key()).filter(|a| *a != "—") { " " span.meta { "since " (at) } }
                    } } }
                }
            }
            h2 { "Integrations" }
            @if v.rows.is_empty() {
                (empty("No integrations to watch yet.", Some(("/console/marketplace", "Connect one"))))
            } @else {
                p.meta #health-counts {
                    @for (k, n) in &by_status { span.badge { (k) ": " (n) } " " }
                    @for (k, n) in &by_circuit { span.badge { "circuit " (k) ": " (n) } " " }
                }
                div.table { table #health {
                    thead { tr {
                        th { "Integration" } th { "Status" } th { "Circuit" } th { "Calls this hour" }
                        th { "Error rate, 24 h" } th { "Latency p50/p95, 24 h" }
                        th { "Last success" } th { "Last error" }
                    } }
                    tbody { @for ((r, h), st) in v.rows.iter().zip(v.healths).zip(v.stats) { tr {
                        td { a href={"/console/integrations/" (t(r, "id"))} { (t(r, "name")) } " " span.meta { (t(r, "provider_code")) } }
                        td { (t(r, "status")) @if !r["is_enabled"].as_bool().unwrap_or(false) { " (disabled)" } }
                        @match h {
                            Ok(h) => {
                                td { (circuit_badge(&t(h, "circuit_state"))) }
                                td { (t(&h["rate_limit"], "used_this_hour")) " of " (t(&h["rate_limit"], "limit_per_hour")) }
                            }
                            Err(f) => { td colspan="2" { "health unavailable: " (f.message) } }
                        }
                        @match st {
                            Ok(st) => {
                                @let hours = Hours::of(st, v.now);
                                td.chart { (hours.error_chart()) }
                                td.chart { (hours.latency_chart()) }
                            }
                            Err(f) => { td colspan="2" { "statistics unavailable: " (f.message) } }
                        }
                        td { (t(r, "last_successful_call")) }
                        td { (t(r, "last_error")) }
                    } } }
                } }
                (pager_named(v.here, "cursor", v.cursor, v.next))
            }
            h2 { "Subscriptions" }
            @match v.subs {
                Err(f) => { (error(f)) }
                Ok(subs) => {
                    @if sub_rows.is_empty() {
                        (empty("No outbound subscriptions yet.", Some(("/console/webhooks", "Create one"))))
                    } @else {
                        div.table { table #health-subscriptions {
                            thead { tr {
                                th { "Subscription" } th { "Status" } th { "Circuit" } th { "Backlog" }
                                th { "Failures in a row" } th { "Delivered / failed" } th { "Last success" } th { "Last failure" }
                            } }
                            tbody { @for r in &sub_rows { tr {
                                td { a href={"/console/webhooks/subscriptions/" (t(r, "id"))} { (t(r, "name")) } }
                                td { (t(r, "status")) @if !r["is_enabled"].as_bool().unwrap_or(false) { " (disabled)" } }
                                td { (circuit_badge(&t(r, "circuit_state"))) }
                                td.backlog { (backlog(&r["backlog"])) }
                                td { (t(r, "consecutive_failures")) }
                                td { (t(r, "total_delivered")) " / " (t(r, "total_failed")) }
                                td { (t(r, "last_success_at")) }
                                td { (t(r, "last_failure_at")) }
                            } } }
                        } }
                        (pager_named(v.here, "sub_cursor", v.sub_cursor, subs["next_cursor"].as_str()))
                    }
                }
            }
            p.meta { "Refreshed at " (v.now.format("%H:%M:%S UTC")) "; refreshes every 10 s." }
        }
    })
}

fn circuit_badge(state: &str) -> Markup {
    let class = match state {
        "CLOSED" => "badge ok",
        "OPEN" => "badge bad",
        "HALF_OPEN" => "badge warn",
        _ => "badge",
    };
    html! { span class=(class) { (state) } }
}

fn backlog(n: &Value) -> Markup {
    match n.as_i64() {
        Some(n) if n >= 10_000 => html! { span.badge.warn { "10,000 or more" } },
        Some(0) => html! { "0" },
        Some(n) => html! { span.badge.warn { (n) " waiting" } },
        None => html! { "—" },
    }
}

/// One hour of an integration's statistics.
#[derive(Debug, Clone, Copy, Default)]
struct Hour {
    calls: i64,
    errors: i64,
    p50: Option<f64>,
    p95: Option<f64>,
}

/// The 24 hours up to now, oldest first (hours without calls are empty).
struct Hours {
    start: DateTime<Utc>,
    slots: [Hour; 24],
}

impl Hours {
    fn of(stats: &Value, now: DateTime<Utc>) -> Self {
        let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let start = this_hour - Duration::hours(23);
        let mut slots = [Hour::default(); 24];
        for h in stats["hours"].as_array().into_iter().flatten() {
            let Some(at) = h["hour"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            else {
                continue;
            };
            let i = (at.with_timezone(&Utc) - start).num_hours();
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get_mut(i)) {
                *slot = Hour {
                    calls: h["calls"].as_i64().unwrap_or(0),
                    errors: h["errors"].as_i64().unwrap_or(0),
                    p50: h["p50_ms"].as_f64(),
                    p95: h["p95_ms"].as_f64(),
                };
            }
        }
        Self { start, slots }
    }

    fn label(&self, i: usize) -> String {
        (self.start + Duration::hours(i as i64))
            .format("%H:00 UTC")
            .to_string()
    }

    fn error_chart(&self) -> Markup {
        let calls: i64 = self.slots.iter().map(|h| h.calls).sum();
        let errors: i64 = self.slots.iter().map(|h| h.errors).sum();
        if calls == 0 {
            return html! { span.meta { "no calls" } };
        }
        let rate = |h: &Hour| (h.calls > 0).then(|| h.errors as f64 / h.calls as f64);
        let worst = (0..24)
            .filter_map(|i| rate(&self.slots[i]).map(|r| (i, r)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let total = pct(errors as f64 / calls as f64);
        let mut text =
            format!("Error rate over 24 hours: {errors} of {calls} calls failed ({total})");
        if let Some((i, r)) = worst.filter(|(_, r)| *r > 0.0) {
            text.push_str(&format!("; worst hour {} at {}", self.label(i), pct(r)));
        }
        html! {
            span.spark {
                svg.errors role="img" aria-label=(text) width="120" height="28" viewBox="0 0 120 28" {
                    title { (text) }
                    line x1="0" y1="27.5" x2="120" y2="27.5" stroke="#d0d7de" stroke-width="1" {}
                    @for (i, h) in self.slots.iter().enumerate() {
                        @if let Some(r) = rate(h) {
                            @let height = (r * 26.0).max(1.0);
                            rect x=(i * 5) y=(format!("{:.1}", 27.0 - height)) width="4" height=(format!("{height:.1}"))
                                fill=(if r > 0.0 { "#a40e26" } else { "#116329" }) {}
                        }
                    }
                }
                " " span.figure { (total) " of " (calls) }
            }
        }
    }

    fn latency_chart(&self) -> Markup {
        let max = self
            .slots
            .iter()
            .filter_map(|h| h.p95.or(h.p50))
            .fold(0.0_f64, f64::max);
        let with_calls: Vec<usize> = (0..24).filter(|i| self.slots[*i].calls > 0).collect();
        let Some(&last) = with_calls.last() else {
            return html! { span.meta { "no calls" } };
        };
        let slowest = with_calls
            .iter()
            .copied()
            .max_by(|a, b| {
                let v = |i: usize| self.slots[i].p95.unwrap_or(0.0);
                v(*a).total_cmp(&v(*b))
            })
            .unwrap_or(last);
        let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0} ms"));
        let latest = &self.slots[last];
        let text = format!(
            "Latency over 24 hours: at {} p50 {}, p95 {}; slowest hour {} with p95 {}",
            self.label(last),
            ms(latest.p50),
            ms(latest.p95),
            self.label(slowest),
            ms(self.slots[slowest].p95),
        );
        let scale = |v: f64| {
            if max > 0.0 {
                (v / max * 26.0).max(1.0)
            } else {
                1.0
            }
        };
        html! {
            span.spark {
                svg.latency role="img" aria-label=(text) width="120" height="28" viewBox="0 0 120 28" {
                    title { (text) }
                    line x1="0" y1="27.5" x2="120" y2="27.5" stroke="#d0d7de" stroke-width="1" {}
                    @for (i, h) in self.slots.iter().enumerate() {
                        @if h.calls > 0 {
                            @if let Some(p95) = h.p95 {
                                @let height = scale(p95);
                                rect x=(i * 5) y=(format!("{:.1}", 27.0 - height)) width="4" height=(format!("{height:.1}")) fill="#9ec5f4" {}
                            }
                            @if let Some(p50) = h.p50 {
                                @let height = scale(p50);
                                rect x=(i * 5) y=(format!("{:.1}", 27.0 - height)) width="4" height=(format!("{height:.1}")) fill="#0b5cad" {}
                            }
                        }
                    }
                }
                " " span.figure { (ms(latest.p50)) " / " (ms(latest.p95)) }
            }
        }
    }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w(kind: char, id: &str, status: &str, circuit: &str) -> Watched {
        Watched {
            kind,
            id: id.to_owned(),
            name: format!("n{id}"),
            status: status.to_owned(),
            circuit: circuit.to_owned(),
        }
    }

    #[test]
    fn changes_name_what_changed_since_the_states_sent_back() {
        let before = [
            w('i', "1", "ACTIVE", "CLOSED"),
            w('s', "2", "ACTIVE", "CLOSED"),
        ];
        let prev = decode(
            &before
                .iter()
                .map(Watched::encode)
                .collect::<Vec<_>>()
                .join(","),
        );
        let now = [
            w('i', "1", "ERROR", "OPEN"),
            w('s', "2", "ACTIVE", "CLOSED"),
            w('i', "3", "ACTIVE", "OPEN"),
        ];
        assert_eq!(
            changes(&prev, &now, "12:00:00 UTC"),
            ["12:00:00 UTC · Integration n1: status ACTIVE → ERROR, circuit CLOSED → OPEN"]
        );
        // An unknown circuit (health unreadable) is not a change.
        assert!(changes(&prev, &[w('i', "1", "ACTIVE", "")], "x").is_empty());
        assert!(decode("garbage,,i:1").is_empty());
    }

    #[test]
    fn hours_fall_in_their_slot_of_the_last_24() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let stats = json!({"hours": [
            {"hour": "2026-01-02T10:00:00Z", "calls": 4, "errors": 1, "p50_ms": 10.0, "p95_ms": 30.0},
            {"hour": "2026-01-01T11:00:00Z", "calls": 2, "errors": 2, "p50_ms": 5.0, "p95_ms": 7.0},
            {"hour": "2026-01-01T10:00:00Z", "calls": 9, "errors": 9}
        ]});
        let h = Hours::of(&stats, now);
        assert_eq!(h.slots[23].calls, 4);
        assert_eq!(h.slots[0].errors, 2);
        assert_eq!(h.slots.iter().map(|s| s.calls).sum::<i64>(), 6);
        let chart = h.error_chart().into_string();
        assert!(
            chart.contains("3 of 6 calls failed (50%); worst hour 11:00 UTC at 100%"),
            "{chart}"
        );
        let chart = h.latency_chart().into_string();
        assert!(
            chart.contains("at 10:00 UTC p50 10 ms, p95 30 ms"),
            "{chart}"
        );
    }
}
