//! Sync schedules: an integration's `sync_frequency` and when its next
//! scheduled sync is due.
//!
//! A frequency is one of the keywords `REALTIME` (every minute, and on the
//! provider's webhooks), `HOURLY`, `DAILY`, `MANUAL` (never scheduled), or a
//! five-field cron expression (`minute hour day-of-month month
//! day-of-week`, evaluated in UTC, parsed by the `croner` crate). The
//! keyword intervals count from the last run (or from when the frequency
//! was set), so integrations set at different times do not all fall due at
//! the top of the hour; a cron expression names wall-clock times.

use crate::status::SyncJobType;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Longest frequency stored (`integrations.sync_frequency` is
/// `VARCHAR(50)`).
pub const MAX_LEN: usize = 50;

/// The keywords, as stored.
pub const KEYWORDS: [&str; 4] = ["REALTIME", "HOURLY", "DAILY", "MANUAL"];

/// How often an integration is synced by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFrequency {
    /// Every minute (and on the provider's webhooks).
    Realtime,
    /// An hour after the last run.
    Hourly,
    /// A day after the last run.
    Daily,
    /// Never scheduled: jobs are created through the API only.
    Manual,
    /// At the times a cron expression names (UTC); boxed, a parsed
    /// expression being some 300 bytes.
    Cron(Box<CronSchedule>),
}

/// A parsed cron expression with the text it was parsed from (two are
/// equal when their texts are).
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    cron: Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronSchedule {}

/// Why a frequency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrequencyError {
    /// Longer than the column holds.
    #[error("must be at most {MAX_LEN} characters")]
    TooLong,
    /// Neither a keyword nor a cron expression the parser accepts.
    #[error(
        "must be REALTIME, HOURLY, DAILY, MANUAL or a cron expression of five fields (minute hour day-of-month month day-of-week, UTC), such as \"*/15 * * * *\"; the cron parser says: {0}"
    )]
    Invalid(String),
    /// A cron expression that no date matches (`0 0 30 2 *`).
    #[error("the cron expression {0:?} matches no date (such as February 30th)")]
    Never(String),
}

impl SyncFrequency {
    /// Parses a frequency as sent or stored: a keyword (any case) or a cron
    /// expression without seconds or years.
    pub fn parse(raw: &str) -> Result<Self, FrequencyError> {
        let raw = raw.trim();
        if raw.chars().count() > MAX_LEN {
            return Err(FrequencyError::TooLong);
        }
        match raw.to_ascii_uppercase().as_str() {
            "REALTIME" => return Ok(Self::Realtime),
            "HOURLY" => return Ok(Self::Hourly),
            "DAILY" => return Ok(Self::Daily),
            "MANUAL" => return Ok(Self::Manual),
            _ => {}
        }
        // croner's `+` (day of month AND day of week, not cron syntax)
        // finds its next date by a slow walk: `3 0 29 2 +` took seconds of
        // CPU per next run, `+MON` with February 29th a minute.
        if raw.contains('+') {
            return Err(FrequencyError::Invalid(
                "'+' (croner's day-of-month AND day-of-week) is not supported; a day of the month and a day of the week in one expression match either".into(),
            ));
        }
        // Seconds would allow a sync every second; years make no sense for
        // a recurring sync.
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(raw)
            .map_err(|e| FrequencyError::Invalid(e.to_string()))?;
        // Any pattern that matches a date recurs within a few years of any
        // start; one that does not (February 30th) is refused up front.
        let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if reference.is_none_or(|r| cron.find_next_occurrence(&r, false).is_err()) {
            return Err(FrequencyError::Never(raw.to_owned()));
        }
        Ok(Self::Cron(Box::new(CronSchedule {
            text: raw.to_owned(),
            cron,
        })))
    }

    /// The frequency as stored: the keyword, or the cron expression as sent
    /// (trimmed).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Realtime => "REALTIME",
            Self::Hourly => "HOURLY",
            Self::Daily => "DAILY",
            Self::Manual => "MANUAL",
            Self::Cron(c) => &c.text,
        }
    }
}

impl std::fmt::Display for SyncFrequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the next scheduled sync after `after` is due; `None` when it is
/// never scheduled (`MANUAL`).
pub fn next_run(frequency: &SyncFrequency, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match frequency {
        SyncFrequency::Realtime => Some(after + Duration::minutes(1)),
        SyncFrequency::Hourly => Some(after + Duration::hours(1)),
        SyncFrequency::Daily => Some(after + Duration::days(1)),
        SyncFrequency::Manual => None,
        // croner keeps the start's fraction of a second in what it finds;
        // from the whole second, the match is on the minute (and still
        // after `after`, being at least a second later).
        SyncFrequency::Cron(c) => c
            .cron
            .find_next_occurrence(&after.trunc_subsecs(0), false)
            .ok(),
    }
}

/// The job a scheduled sync of an entity runs: INCREMENTAL from the
/// watermark a completed run left, else (never synced, or no run completed)
/// FULL_SYNC.
pub fn scheduled_job_type(has_watermark: bool) -> SyncJobType {
    if has_watermark {
        SyncJobType::Incremental
    } else {
        SyncJobType::FullSync
    }
}

/// [`next_run`] of a stored `sync_frequency`: `None` (never scheduled) for
/// no frequency, `MANUAL`, or a value that is no longer valid (written
/// before it was checked).
pub fn next_run_of(stored: Option<&str>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_run(&SyncFrequency::parse(stored?).ok()?, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(f: &str, after: &str) -> Option<DateTime<Utc>> {
        next_run(&SyncFrequency::parse(f).unwrap(), at(after))
    }

    #[test]
    fn keywords_count_from_the_last_run() {
        let after = "2025-03-10T10:17:42Z";
        assert_eq!(next("REALTIME", after), Some(at("2025-03-10T10:18:42Z")));
        assert_eq!(next("hourly", after), Some(at("2025-03-10T11:17:42Z")));
        assert_eq!(next(" Daily ", after), Some(at("2025-03-11T10:17:42Z")));
        assert_eq!(next("MANUAL", after), None);
    }

    #[test]
    fn keywords_are_stored_upper_case_and_cron_as_sent() {
        assert_eq!(SyncFrequency::parse("hourly").unwrap().as_str(), "HOURLY");
        assert_eq!(
            SyncFrequency::parse("manual").unwrap(),
            SyncFrequency::Manual
        );
        let c = SyncFrequency::parse(" */15 * * * * ").unwrap();
        assert_eq!(c.as_str(), "*/15 * * * *");
        assert_eq!(c.to_string(), "*/15 * * * *");
    }

    #[test]
    fn cron_expressions_name_the_next_matching_minute_in_utc() {
        let after = "2025-03-10T10:17:42Z";
        assert_eq!(
            next("*/15 * * * *", after),
            Some(at("2025-03-10T10:30:00Z"))
        );
        assert_eq!(next("0 2 * * *", after), Some(at("2025-03-11T02:00:00Z")));
        // Monday to Friday at 08:30: from a Friday evening, the Monday.
        assert_eq!(
            next("30 8 * * 1-5", "2025-03-14T18:00:00Z"),
            Some(at("2025-03-17T08:30:00Z"))
        );
        // Strictly after: a run at the matching minute is not due again.
        assert_eq!(
            next("30 8 * * *", "2025-03-10T08:30:00Z"),
            Some(at("2025-03-11T08:30:00Z"))
        );
        // Leap days recur.
        assert_eq!(
            next("0 0 29 2 *", "2025-01-01T00:00:00Z"),
            Some(at("2028-02-29T00:00:00Z"))
        );
        assert_eq!(next("@daily", after), Some(at("2025-03-11T00:00:00Z")));
        // On the minute, whatever fraction of a second the start has.
        assert_eq!(
            next("*/15 * * * *", "2025-03-10T10:29:59.750Z"),
            Some(at("2025-03-10T10:30:00Z"))
        );
        assert_eq!(
            next("*/15 * * * *", "2025-03-10T10:30:00.250Z"),
            Some(at("2025-03-10T10:45:00Z"))
        );
    }

    #[test]
    fn bad_cron_expressions_are_refused_with_the_parsers_message() {
        for bad in [
            "61 * * * *",
            "* * *",
            "every day",
            "",
            "* * * * * *",
            "0 0 1 1 * 2030",
        ] {
            match SyncFrequency::parse(bad) {
                Err(FrequencyError::Invalid(m)) => assert!(!m.is_empty(), "{bad}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = SyncFrequency::parse("61 * * * *").unwrap_err().to_string();
        assert!(
            e.starts_with("must be REALTIME, HOURLY, DAILY, MANUAL or a cron"),
            "{e}"
        );
        assert_eq!(
            SyncFrequency::parse("0 0 30 2 *"),
            Err(FrequencyError::Never("0 0 30 2 *".into()))
        );
        assert_eq!(
            SyncFrequency::parse(&format!("0 0 * * * {}", " ".repeat(50))).map(|f| f.to_string()),
            Ok("0 0 * * *".into()),
            "trimmed before its length is checked"
        );
        assert_eq!(
            SyncFrequency::parse(&"1,".repeat(30)),
            Err(FrequencyError::TooLong)
        );
    }

    #[test]
    fn a_watermark_makes_the_scheduled_job_incremental() {
        assert_eq!(scheduled_job_type(true), SyncJobType::Incremental);
        assert_eq!(scheduled_job_type(false), SyncJobType::FullSync);
    }

    #[test]
    fn stored_values_that_are_missing_manual_or_invalid_are_never_scheduled() {
        let after = at("2025-03-10T10:00:00Z");
        assert_eq!(next_run_of(None, after), None);
        assert_eq!(next_run_of(Some("MANUAL"), after), None);
        assert_eq!(next_run_of(Some("WEEKLY"), after), None);
        assert_eq!(
            next_run_of(Some("HOURLY"), after),
            Some(at("2025-03-10T11:00:00Z"))
        );
    }

    proptest::proptest! {
        /// Whatever the start, the next run is after it, on a minute the
        /// expression's step names, and no further than the longest gap.
        #[test]
        fn cron_next_run_is_the_next_step(secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000, step in 1u32..=30) {
            let after = Utc.timestamp_opt(secs, nanos).unwrap();
            let f = SyncFrequency::parse(&format!("*/{step} * * * *")).unwrap();
            let n = next_run(&f, after).unwrap();
            proptest::prop_assert!(n > after);
            proptest::prop_assert_eq!(n.timestamp() % 60, 0);
            proptest::prop_assert_eq!(n.timestamp_subsec_nanos(), 0);
            let minute = (n.timestamp() / 60 % 60) as u32;
            proptest::prop_assert_eq!(minute % step, 0);
            // The longest gap: a step, or from the hour's last match to the
            // next hour's minute 0.
            let gap = step.max(60 - 59 / step * step);
            proptest::prop_assert!(n - after <= Duration::minutes(i64::from(gap)));
        }
    }
}
