//! The records a fake serves: per object type, `count` generated records
//! (numbered `1..=count`, built on demand from their number, so 200,000 of
//! them cost nothing until served) and a few overrides (records changed,
//! created or deleted since), and the query engine every paging style is
//! built on.
//!
//! A generated record `n` was last modified at [`generated_time`]`(n)`: one
//! minute apart from 2024-01-01T08:00:00Z, so the generated part is sorted
//! by id and by modification time at once. That is what keeps a page cheap:
//! which generated records match a time filter is an interval of ids, and
//! the overrides, which are few, are merged in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// Fields of a record, in the provider's own naming.
pub(super) type Fields = Map<String, Value>;

/// The fields of a JSON object (`json!({…})` in a generator); none for
/// anything else.
pub(super) fn fields_of(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Fields::new(),
    }
}

/// Milliseconds between two generated records' modification times.
const STEP_MS: i64 = 60_000;

/// The modification time of generated record 0 (never served).
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// When generated record `n` was last modified (one minute apart from
/// 2024-01-01T08:00:00Z).
pub(super) fn generated_time(n: u64) -> DateTime<Utc> {
    let minutes = i64::try_from(n).unwrap_or(i64::MAX / STEP_MS);
    epoch() + chrono::Duration::milliseconds(minutes.saturating_mul(STEP_MS))
}

/// When generated record `n` was created: 30 days before its modification.
pub(super) fn generated_created(n: u64) -> DateTime<Utc> {
    generated_time(n) - chrono::Duration::days(30)
}

/// Milliseconds from the epoch of the generated times to `t`.
fn offset_ms(t: DateTime<Utc>) -> i64 {
    (t - epoch()).num_milliseconds()
}

/// How a provider names, builds and changes the records of its objects.
pub(super) trait Schema: Sync {
    /// The object types the provider serves.
    fn objects(&self) -> &'static [ObjectSpec];

    /// Every field of generated record `n` of `object`, without the
    /// timestamps and version the renderer adds from the [`Record`].
    fn generate(&self, object: &'static str, n: u64) -> Fields;

    /// The provider's id of record `n` (`"006Fk0000000001IAW"`).
    fn id(&self, object: &'static str, n: u64) -> String;

    /// The record number of the provider's id, if it has that shape.
    fn number(&self, object: &'static str, id: &str) -> Option<u64>;

    /// The version a generated record starts at (QuickBooks' `SyncToken`).
    fn base_version(&self, _object: &'static str, _n: u64) -> u64 {
        0
    }

    /// The fields a change made at the provider alters, given the record as
    /// it is (its version already counts this change).
    fn touched(&self, object: &'static str, record: &Record) -> Fields;

    /// The record as the provider's single-record read returns it.
    fn render(&self, object: &'static str, record: &Record) -> Value;
}

/// One object type of a provider.
#[derive(Debug, Clone, Copy)]
pub(super) struct ObjectSpec {
    /// The provider's name for it (`contacts`, `Opportunity`).
    pub name: &'static str,
    /// How many generated records it has until `set_count`.
    pub default_count: u64,
}

/// A record as it is now: generated fields with the overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    /// Its number (the generated ones are `1..=count`).
    pub num: u64,
    pub fields: Fields,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Changes since creation (plus the provider's base version).
    pub version: u64,
    /// Set when deleted (archived); `modified` is then the deletion time.
    pub deleted: bool,
}

/// What is stored of a record that is not as generated.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    /// Fields over the generated ones (all of them for a created record).
    pub fields: Fields,
    /// Creation time of a record created after generation; `None` for a
    /// generated one.
    pub born: Option<DateTime<Utc>>,
    pub modified: DateTime<Utc>,
    /// Changes made on top of the generated record.
    pub edits: u64,
    pub deleted: bool,
}

/// The records of one object type.
#[derive(Debug, Clone)]
pub(super) struct Table {
    count: u64,
    rows: BTreeMap<u64, Row>,
    /// The highest record number handed out so far.
    highest: u64,
    /// The query view, built on first use after a change.
    view: OnceLock<View>,
}

impl Table {
    fn new(count: u64) -> Self {
        Self {
            count,
            rows: BTreeMap::new(),
            highest: count,
            view: OnceLock::new(),
        }
    }

    fn set_count(&mut self, n: u64) {
        self.view = OnceLock::new();
        self.count = n;
        self.highest = self.highest.max(n);
    }

    /// Whether record `n` exists (deleted ones do not).
    pub(super) fn exists(&self, n: u64) -> bool {
        match self.rows.get(&n) {
            Some(row) => !row.deleted,
            None => (1..=self.count).contains(&n),
        }
    }

    /// Every existing record number, in order (O(count): for selections at
    /// test set-up, never for serving).
    pub(super) fn existing(&self) -> Vec<u64> {
        let mut out: Vec<u64> = (1..=self.count)
            .filter(|n| self.rows.get(n).is_none_or(|r| !r.deleted))
            .collect();
        out.extend(
            self.rows
                .range(self.count.saturating_add(1)..)
                .filter(|(_, r)| !r.deleted)
                .map(|(id, _)| *id),
        );
        out
    }

    /// The record `n` as it is now, deleted ones included.
    pub(super) fn get(&self, schema: &dyn Schema, object: &'static str, n: u64) -> Option<Record> {
        materialize(schema, object, n, self.rows.get(&n), self.count)
    }

    /// Stores a change of record `n` (which must exist): `patch` over its
    /// fields, modified at `at`, one more version.
    pub(super) fn change(&mut self, n: u64, patch: Fields, at: DateTime<Utc>) {
        let row = self.row_mut(n, at);
        row.fields.extend(patch);
        row.modified = at;
        row.edits += 1;
    }

    /// The override of record `n` (a fresh one, as generated, if none),
    /// about to change at `at`: the query view is stale from here.
    fn row_mut(&mut self, n: u64, at: DateTime<Utc>) -> &mut Row {
        self.view = OnceLock::new();
        self.rows.entry(n).or_insert_with(|| Row {
            fields: Fields::new(),
            born: None,
            modified: at,
            edits: 0,
            deleted: false,
        })
    }

    /// Marks record `n` deleted at `at`.
    pub(super) fn delete(&mut self, n: u64, at: DateTime<Utc>) {
        let row = self.row_mut(n, at);
        row.deleted = true;
        row.modified = at;
    }

    /// Adds a record created at `at` with the fields `fields` gives for its
    /// number; the number.
    pub(super) fn create(&mut self, at: DateTime<Utc>, fields: impl FnOnce(u64) -> Fields) -> u64 {
        self.view = OnceLock::new();
        self.highest += 1;
        let n = self.highest;
        self.rows.insert(
            n,
            Row {
                fields: fields(n),
                born: Some(at),
                modified: at,
                edits: 0,
                deleted: false,
            },
        );
        n
    }

    /// A snapshot of what queries need (the overrides' times), so a query
    /// cursor stays stable; built once per change, shared after.
    pub(super) fn view(&self) -> View {
        self.view
            .get_or_init(|| View {
                count: self.count,
                overrides: Arc::new(
                    self.rows
                        .iter()
                        .map(|(id, row)| Override {
                            id: *id,
                            modified: row.modified,
                            deleted: row.deleted,
                        })
                        .collect(),
                ),
            })
            .clone()
    }
}

/// Builds record `n` from its override (if any) and the generator.
pub(super) fn materialize(
    schema: &dyn Schema,
    object: &'static str,
    n: u64,
    row: Option<&Row>,
    count: u64,
) -> Option<Record> {
    match row {
        None => (1..=count).contains(&n).then(|| Record {
            num: n,
            fields: schema.generate(object, n),
            created: generated_created(n),
            modified: generated_time(n),
            version: schema.base_version(object, n),
            deleted: false,
        }),
        Some(row) => {
            let (mut fields, created, base) = match row.born {
                Some(born) => (Fields::new(), born, 0),
                None => (
                    schema.generate(object, n),
                    generated_created(n),
                    schema.base_version(object, n),
                ),
            };
            fields.extend(row.fields.clone());
            Some(Record {
                num: n,
                fields,
                created,
                modified: row.modified,
                version: base + row.edits,
                deleted: row.deleted,
            })
        }
    }
}

/// The overrides' ids and times at one moment, and the generated count.
#[derive(Debug, Clone)]
pub(super) struct View {
    count: u64,
    /// Sorted by id.
    overrides: Arc<Vec<Override>>,
}

#[derive(Debug, Clone, Copy)]
struct Override {
    id: u64,
    modified: DateTime<Utc>,
    deleted: bool,
}

/// One bound on the modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    /// `>`
    After(DateTime<Utc>),
    /// `>=`
    AtOrAfter(DateTime<Utc>),
    /// `<`
    Before(DateTime<Utc>),
    /// `<=`
    AtOrBefore(DateTime<Utc>),
}

impl Bound {
    /// The bound of comparison `op` (`>`, `>=`, `<`, `<=`; `=` is both
    /// `>=` and `<=`) against `t`.
    pub(super) fn of(op: &str, t: DateTime<Utc>) -> Vec<Bound> {
        match op {
            ">" => vec![Bound::After(t)],
            ">=" => vec![Bound::AtOrAfter(t)],
            "<" => vec![Bound::Before(t)],
            "<=" => vec![Bound::AtOrBefore(t)],
            _ => vec![Bound::AtOrAfter(t), Bound::AtOrBefore(t)],
        }
    }

    fn admits(self, t: DateTime<Utc>) -> bool {
        match self {
            Bound::After(b) => t > b,
            Bound::AtOrAfter(b) => t >= b,
            Bound::Before(b) => t < b,
            Bound::AtOrBefore(b) => t <= b,
        }
    }

    /// The generated ids whose time passes: `[lo, hi]` (may be empty).
    fn ids(self) -> (u64, u64) {
        let d = |t| offset_ms(t);
        let floor = |t| d(t).div_euclid(STEP_MS);
        let ceil = |t| -((-d(t)).div_euclid(STEP_MS));
        let clamp = |v: i64| u64::try_from(v.max(0)).unwrap_or(0);
        match self {
            Bound::After(t) => (clamp(floor(t) + 1), u64::MAX),
            Bound::AtOrAfter(t) => (clamp(ceil(t)), u64::MAX),
            Bound::Before(t) => {
                let hi = ceil(t) - 1;
                if hi < 0 { (1, 0) } else { (0, clamp(hi)) }
            }
            Bound::AtOrBefore(t) => {
                let hi = floor(t);
                if hi < 0 { (1, 0) } else { (0, clamp(hi)) }
            }
        }
    }
}

/// In which order a query returns records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Order {
    /// By record number (the providers' id order).
    #[default]
    Id,
    /// By modification time, then record number.
    Modified,
}

/// Which records a query returns, and in which order.
#[derive(Debug, Clone, Default)]
pub(super) struct Query {
    /// Bounds on the modification time, all of which must hold.
    pub time: Vec<Bound>,
    /// Only record numbers above this one.
    pub above: u64,
    /// Only record numbers up to this one (`None`: no bound).
    pub up_to: Option<u64>,
    pub order: Order,
    pub descending: bool,
    /// The deleted (archived) records instead of the live ones.
    pub deleted: bool,
}

impl Query {
    /// Narrows the record numbers to those `op n` (`>`, `>=`, `<`, `<=`;
    /// anything else is `=`), as an Id filter does.
    pub(super) fn narrow_ids(&mut self, op: &str, n: u64) {
        let mut at_most = |max: u64| self.up_to = Some(self.up_to.map_or(max, |m| m.min(max)));
        match op {
            ">" => self.above = self.above.max(n),
            ">=" => self.above = self.above.max(n.saturating_sub(1)),
            "<" => at_most(n.saturating_sub(1)),
            "<=" => at_most(n),
            _ => {
                at_most(n);
                self.above = self.above.max(n.saturating_sub(1));
            }
        }
    }

    fn admits(&self, o: &Override) -> bool {
        o.deleted == self.deleted
            && o.id > self.above
            && self.up_to.is_none_or(|max| o.id <= max)
            && self.time.iter().all(|b| b.admits(o.modified))
    }
}

/// The sort key of a record: `(time, number)`, the time ignored in id order.
type Key = (i64, u64);

impl View {
    /// The generated ids `[lo, hi]` the query admits by id and time
    /// (overridden ones still to exclude).
    fn generated_range(&self, q: &Query) -> (u64, u64) {
        if q.deleted {
            return (1, 0);
        }
        let mut lo = q.above.saturating_add(1).max(1);
        let mut hi = q.up_to.unwrap_or(u64::MAX).min(self.count);
        for b in &q.time {
            let (l, h) = b.ids();
            lo = lo.max(l);
            hi = hi.min(h);
        }
        (lo, hi)
    }

    /// How many override ids lie in `[lo, hi]`.
    fn overrides_in(&self, lo: u64, hi: u64) -> u64 {
        if lo > hi {
            return 0;
        }
        let start = self.overrides.partition_point(|o| o.id < lo);
        let end = self.overrides.partition_point(|o| o.id <= hi);
        (end - start) as u64
    }

    fn is_override(&self, id: u64) -> bool {
        self.overrides.binary_search_by_key(&id, |o| o.id).is_ok()
    }

    /// Generated members (not overridden) in `[lo, hi]`.
    fn generated_in(&self, lo: u64, hi: u64) -> u64 {
        if lo > hi {
            return 0;
        }
        (hi - lo + 1) - self.overrides_in(lo, hi)
    }

    /// The `k`-th (0-based) generated member of `[lo, hi]`, if any.
    fn nth_generated(&self, lo: u64, hi: u64, k: u64) -> Option<u64> {
        // The smallest x with k + 1 members in [lo, x] is a fixed point of
        // x = lo + k + overrides_in(lo, x), reached from below.
        let mut x = lo.checked_add(k)?;
        loop {
            if x > hi {
                return None;
            }
            let next = lo + k + self.overrides_in(lo, x);
            if next == x {
                return Some(x);
            }
            x = next;
        }
    }

    fn key(order: Order, id: u64, modified: DateTime<Utc>) -> Key {
        match order {
            Order::Id => (0, id),
            Order::Modified => (modified.timestamp_millis(), id),
        }
    }

    /// The first generated id whose key is at least `key`.
    fn generated_from_key(order: Order, key: Key) -> u64 {
        match order {
            Order::Id => key.1,
            Order::Modified => {
                let d = key.0 - epoch().timestamp_millis();
                let m = -((-d).div_euclid(STEP_MS));
                let m = u64::try_from(m.max(0)).unwrap_or(0);
                if generated_time(m).timestamp_millis() == key.0 && m < key.1 {
                    m + 1
                } else {
                    m
                }
            }
        }
    }

    /// The overrides the query admits, sorted by the query's key.
    fn admitted_overrides(&self, q: &Query) -> Vec<(Key, u64)> {
        let mut out: Vec<(Key, u64)> = self
            .overrides
            .iter()
            .filter(|o| q.admits(o))
            .map(|o| (Self::key(q.order, o.id, o.modified), o.id))
            .collect();
        out.sort_unstable();
        out
    }

    /// How many records the query matches.
    pub(super) fn total(&self, q: &Query) -> u64 {
        let (lo, hi) = self.generated_range(q);
        self.generated_in(lo, hi) + self.overrides.iter().filter(|o| q.admits(o)).count() as u64
    }

    /// Record numbers `offset..offset + limit` of the query's result, in its
    /// order.
    pub(super) fn page(&self, q: &Query, offset: u64, limit: u64) -> Vec<u64> {
        if q.descending {
            let total = self.total(q);
            let ascending = Query {
                descending: false,
                ..q.clone()
            };
            let first = total.saturating_sub(offset.saturating_add(limit));
            let last = total.saturating_sub(offset);
            let mut ids = self.page(&ascending, first, last - first);
            ids.reverse();
            return ids;
        }
        let (lo, hi) = self.generated_range(q);
        let admitted = self.admitted_overrides(q);
        // Generated members before each admitted override, in merged order.
        let generated_before = |key: Key| {
            let from = Self::generated_from_key(q.order, key);
            if from == 0 {
                0
            } else {
                self.generated_in(lo, hi.min(from - 1))
            }
        };
        let mut v_skip = admitted.len();
        for (i, (key, _)) in admitted.iter().enumerate() {
            if i as u64 + generated_before(*key) >= offset {
                v_skip = i;
                break;
            }
        }
        let Some(mut g_skip) = offset.checked_sub(v_skip as u64) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(usize::try_from(limit.min(10_000)).unwrap_or(0));
        let mut next_g = self.nth_generated(lo, hi, g_skip);
        let mut v = admitted[v_skip..].iter().peekable();
        while (out.len() as u64) < limit {
            let g_key = next_g.map(|g| Self::key(q.order, g, generated_time(g)));
            let take_v = match (g_key, v.peek()) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(gk), Some((vk, _))) => *vk < gk,
            };
            if take_v {
                if let Some((_, id)) = v.next() {
                    out.push(*id);
                }
            } else if let Some(g) = next_g {
                out.push(g);
                g_skip += 1;
                // Usually the next id; past an override, the fixed point.
                next_g = if g < hi && !self.is_override(g + 1) {
                    Some(g + 1)
                } else {
                    self.nth_generated(lo, hi, g_skip)
                };
            }
        }
        out
    }
}

/// A page of a query, fetched under the lock, built outside it.
#[derive(Debug)]
pub(super) struct Batch {
    /// How many records the whole query matches.
    pub total: u64,
    count: u64,
    items: Vec<(u64, Option<Row>)>,
}

impl Batch {
    /// How many records the page holds.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// The page's records, built.
    pub(super) fn records(self, schema: &dyn Schema, object: &'static str) -> Vec<Record> {
        let count = self.count;
        self.items
            .into_iter()
            .filter_map(|(n, row)| materialize(schema, object, n, row.as_ref(), count))
            .collect()
    }
}

/// How a fake's clock stamps changes: never before the newest record, and
/// strictly increasing.
#[derive(Debug, Default)]
pub(super) struct Clock {
    last: Option<DateTime<Utc>>,
}

/// Every object's records on one fake.
#[derive(Debug, Default)]
pub(super) struct Store {
    tables: HashMap<&'static str, Table>,
    clock: Clock,
}

impl Store {
    /// The table of `spec`, created with its default count on first use.
    pub(super) fn table(&mut self, spec: &ObjectSpec) -> &mut Table {
        self.tables
            .entry(spec.name)
            .or_insert_with(|| Table::new(spec.default_count))
    }

    /// Record `n` of `spec` as it is now (deleted ones included).
    pub(super) fn peek_record(
        &self,
        schema: &dyn Schema,
        spec: &ObjectSpec,
        n: u64,
    ) -> Option<Record> {
        match self.tables.get(spec.name) {
            Some(t) => t.get(schema, spec.name, n),
            None => materialize(schema, spec.name, n, None, spec.default_count),
        }
    }

    /// The query view of `spec` now.
    pub(super) fn view(&self, spec: &ObjectSpec) -> View {
        match self.tables.get(spec.name) {
            Some(t) => t.view(),
            None => View {
                count: spec.default_count,
                overrides: Arc::new(Vec::new()),
            },
        }
    }

    /// Records `offset..offset + limit` of `q` over `view` (a snapshot, or
    /// [`Self::view`] now), with what is stored of them now, to build
    /// outside the lock.
    pub(super) fn fetch(
        &self,
        spec: &ObjectSpec,
        view: &View,
        q: &Query,
        offset: u64,
        limit: u64,
    ) -> Batch {
        let numbers = view.page(q, offset, limit);
        let table = self.tables.get(spec.name);
        Batch {
            total: view.total(q),
            count: table.map_or(spec.default_count, |t| t.count),
            items: numbers
                .into_iter()
                .map(|n| (n, table.and_then(|t| t.rows.get(&n).cloned())))
                .collect(),
        }
    }

    /// Sets how many generated records `spec` has.
    pub(super) fn set_count(&mut self, spec: &ObjectSpec, n: u64) {
        self.table(spec).set_count(n);
    }

    /// The time the next change would carry: now, but never before the
    /// newest generated or changed record, nor the last stamp.
    pub(super) fn now(&self) -> DateTime<Utc> {
        let newest_generated = self.tables.values().map(|t| generated_time(t.count)).max();
        // Every change was stamped by this clock (or noted by it), so the
        // last stamp is at least the newest change.
        let floor = [newest_generated, self.clock.last]
            .into_iter()
            .flatten()
            .max()
            .map(|t| t + chrono::Duration::milliseconds(1));
        let now = Utc::now();
        floor.map_or(now, |f| f.max(now))
    }

    /// A stamp for a change now, later than every earlier one.
    pub(super) fn stamp(&mut self) -> DateTime<Utc> {
        let t = self.now();
        self.clock.last = Some(t);
        t
    }

    /// Notes a change stamped `at` by the caller, so later stamps follow it.
    pub(super) fn note(&mut self, at: DateTime<Utc>) {
        self.clock.last = Some(self.clock.last.map_or(at, |l| l.max(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(count: u64) -> Table {
        Table::new(count)
    }

    /// Every record the query matches, by brute force, in the query's order.
    fn brute(t: &Table, q: &Query) -> Vec<u64> {
        let mut all: Vec<(Key, u64)> = Vec::new();
        for n in 1..=t.highest {
            let (modified, deleted, exists) = match t.rows.get(&n) {
                Some(r) => (r.modified, r.deleted, true),
                None => (generated_time(n), false, n <= t.count),
            };
            if !exists || deleted != q.deleted || n <= q.above {
                continue;
            }
            if q.up_to.is_some_and(|m| n > m) || !q.time.iter().all(|b| b.admits(modified)) {
                continue;
            }
            all.push((View::key(q.order, n, modified), n));
        }
        all.sort_unstable();
        let mut ids: Vec<u64> = all.into_iter().map(|(_, n)| n).collect();
        if q.descending {
            ids.reverse();
        }
        ids
    }

    fn walk(view: &View, q: &Query, page: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let ids = view.page(q, offset, page);
            if ids.is_empty() {
                break;
            }
            offset += ids.len() as u64;
            out.extend(ids);
        }
        out
    }

    #[test]
    fn pages_match_brute_force_under_changes_deletions_and_creations() {
        let mut t = table(500);
        let late = generated_time(10_000);
        for n in [3, 4, 5, 100, 101, 250, 499, 500] {
            t.change(
                n,
                Fields::new(),
                late + chrono::Duration::minutes(n as i64 % 7),
            );
        }
        // A change into the past, between generated times, and one on a tie.
        t.change(
            7,
            Fields::new(),
            generated_time(40) + chrono::Duration::seconds(30),
        );
        t.change(8, Fields::new(), generated_time(60));
        for n in [1, 2, 50, 51, 52, 400] {
            t.delete(n, late);
        }
        let created = t.create(late + chrono::Duration::seconds(1), |_| Fields::new());
        assert_eq!(created, 501);
        let view = t.view();
        let cut = generated_time(200);
        let queries = [
            Query::default(),
            Query {
                order: Order::Modified,
                ..Query::default()
            },
            Query {
                time: vec![Bound::After(cut)],
                ..Query::default()
            },
            Query {
                time: vec![Bound::AtOrAfter(cut), Bound::Before(late)],
                order: Order::Modified,
                ..Query::default()
            },
            Query {
                time: vec![Bound::AtOrBefore(cut)],
                descending: true,
                ..Query::default()
            },
            Query {
                above: 120,
                up_to: Some(480),
                order: Order::Modified,
                descending: true,
                ..Query::default()
            },
            Query {
                deleted: true,
                ..Query::default()
            },
            Query {
                time: vec![Bound::After(late)],
                order: Order::Modified,
                ..Query::default()
            },
        ];
        for q in &queries {
            let expected = brute(&t, q);
            assert_eq!(view.total(q), expected.len() as u64, "{q:?}");
            for page in [1, 7, 100, 1000] {
                assert_eq!(walk(&view, q, page), expected, "{q:?} page {page}");
            }
        }
    }

    #[test]
    fn time_bounds_map_to_generated_ids() {
        let t = generated_time(10);
        assert_eq!(Bound::After(t).ids().0, 11);
        assert_eq!(Bound::AtOrAfter(t).ids().0, 10);
        assert_eq!(Bound::Before(t).ids().1, 9);
        assert_eq!(Bound::AtOrBefore(t).ids().1, 10);
        let between = t + chrono::Duration::seconds(1);
        assert_eq!(Bound::After(between).ids().0, 11);
        assert_eq!(Bound::AtOrBefore(between).ids().1, 10);
        let long_ago = generated_time(0) - chrono::Duration::days(1);
        assert_eq!(Bound::Before(long_ago).ids(), (1, 0));
        assert_eq!(Bound::After(long_ago).ids().0, 0);
    }

    #[test]
    fn a_page_deep_in_a_large_table_is_cheap_and_exact() {
        let mut t = table(1_000_000);
        t.delete(500_001, generated_time(2_000_000));
        let view = t.view();
        let ids = view.page(&Query::default(), 500_000, 3);
        assert_eq!(ids, vec![500_000 + 2, 500_000 + 3, 500_000 + 4]);
        assert_eq!(view.total(&Query::default()), 999_999);
    }

    #[test]
    fn existing_lists_live_records_in_order() {
        let mut t = table(5);
        t.delete(2, generated_time(9));
        t.change(4, Fields::new(), generated_time(9));
        t.create(generated_time(9), |_| Fields::new());
        assert_eq!(t.existing(), vec![1, 3, 4, 5, 6]);
        assert!(t.exists(6) && !t.exists(2) && !t.exists(7));
    }
}
