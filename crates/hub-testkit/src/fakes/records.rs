//! The handle's control of a fake's records: how many there are, changes
//! made at the provider (touch, delete, create), what a record looks like
//! now, and the writes the fake's API received.

use std::ops::RangeInclusive;
use std::sync::Arc;

use super::*;

/// Which records of an object a change applies to. Records that do not
/// exist (never generated, or deleted) are left out.
#[derive(Clone)]
pub enum Selection {
    /// Record numbers: the generated records are `1..=count`, created ones
    /// follow.
    Numbers(Vec<u64>),
    /// The provider's ids (`"006Fk0000000001IAW"`, `"101"`).
    Ids(Vec<String>),
    /// This share (0.0 to 1.0) of the existing records, spread evenly:
    /// `floor(existing × share)` of them.
    Fraction(f64),
    /// The existing records whose number passes the predicate.
    Matching(Arc<dyn Fn(u64) -> bool + Send + Sync>),
}

impl Selection {
    /// This share (0.0 to 1.0) of the existing records, spread evenly.
    pub fn fraction(share: f64) -> Self {
        Selection::Fraction(share)
    }

    /// The existing records whose number passes `predicate`.
    pub fn matching(predicate: impl Fn(u64) -> bool + Send + Sync + 'static) -> Self {
        Selection::Matching(Arc::new(predicate))
    }

    /// The records with these provider ids.
    pub fn ids<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Selection::Ids(ids.into_iter().map(Into::into).collect())
    }
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Numbers(n) => f.debug_tuple("Numbers").field(n).finish(),
            Selection::Ids(ids) => f.debug_tuple("Ids").field(ids).finish(),
            Selection::Fraction(s) => f.debug_tuple("Fraction").field(s).finish(),
            Selection::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

impl From<Vec<u64>> for Selection {
    fn from(numbers: Vec<u64>) -> Self {
        Selection::Numbers(numbers)
    }
}

impl From<&[u64]> for Selection {
    fn from(numbers: &[u64]) -> Self {
        Selection::Numbers(numbers.to_vec())
    }
}

impl<const N: usize> From<[u64; N]> for Selection {
    fn from(numbers: [u64; N]) -> Self {
        Selection::Numbers(numbers.to_vec())
    }
}

impl From<RangeInclusive<u64>> for Selection {
    fn from(numbers: RangeInclusive<u64>) -> Self {
        Selection::Numbers(numbers.collect())
    }
}

impl From<u64> for Selection {
    fn from(number: u64) -> Self {
        Selection::Numbers(vec![number])
    }
}

/// A record named by its number or by the provider's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef {
    /// Its number (generated records are `1..=count`).
    Number(u64),
    /// The provider's id.
    Id(String),
}

impl From<u64> for RecordRef {
    fn from(n: u64) -> Self {
        RecordRef::Number(n)
    }
}

impl From<&str> for RecordRef {
    fn from(id: &str) -> Self {
        RecordRef::Id(id.to_owned())
    }
}

impl From<String> for RecordRef {
    fn from(id: String) -> Self {
        RecordRef::Id(id)
    }
}

impl From<&String> for RecordRef {
    fn from(id: &String) -> Self {
        RecordRef::Id(id.clone())
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// A record was created.
    Create,
    /// A record was changed.
    Update,
    /// A record was deleted (archived).
    Delete,
}

/// A write the fake's API received and applied (refused ones are not
/// kept): which record, what, and with which fields as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The object type, as the fake names it (`contacts`, `Opportunity`).
    pub object: String,
    /// The record's provider id (the new one for a create).
    pub id: String,
    /// What the write did.
    pub op: WriteOp,
    /// The fields sent, in the provider's naming, less its bookkeeping ones
    /// (QuickBooks' `Id` and `SyncToken`, Zoho's `id`, Xero's `InvoiceID`);
    /// an empty object for a delete.
    pub fields: Value,
    /// The modification time the fake stamped on the record.
    pub at: DateTime<Utc>,
}

impl FakeProvider {
    fn spec(&self, object: &str) -> &'static ObjectSpec {
        self.kind.object(object).unwrap_or_else(|| {
            panic!(
                "the fake {:?} has no object {object:?} (it has: {})",
                self.kind,
                self.objects().join(", ")
            )
        })
    }

    /// The object types this fake serves, as it names them (HubSpot
    /// `contacts`, `companies`, `deals`); every method below takes these
    /// names, in any case.
    pub fn objects(&self) -> Vec<&'static str> {
        self.kind
            .schema()
            .objects()
            .iter()
            .map(|o| o.name)
            .collect()
    }

    /// Sets how many generated records `object` has (`1..=n`); records
    /// already changed, created or deleted stay as they are.
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn set_count(&self, object: &str, n: u64) {
        let spec = self.spec(object);
        self.shared.lock().store.set_count(spec, n);
    }

    /// How many records of `object` exist now (generated and created, less
    /// the deleted ones).
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn count(&self, object: &str) -> u64 {
        let spec = self.spec(object);
        self.shared.lock().store.view(spec).total(&Query::default())
    }

    /// The provider's id of record number `n` of `object` (HubSpot `"7"`,
    /// Salesforce `"006Fk0000000007IAW"`).
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn record_id(&self, object: &str, n: u64) -> String {
        let spec = self.spec(object);
        self.kind.schema().id(spec.name, n)
    }

    /// The fake's clock: every change so far carries this time or an
    /// earlier one, every later change a later one, so "modified after
    /// `now()`" is exactly what changes from here on. The wall clock, but
    /// never before the newest record or change (generated records reach
    /// into the future when there are millions of them).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.lock().store.stamp()
    }

    /// Changes the selected records of `object` as a user at the provider
    /// would (a field or two, the provider's version or `SyncToken`) and
    /// stamps them modified now ([`Self::now`]); their provider ids.
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn touch(&self, object: &str, which: impl Into<Selection>) -> Vec<String> {
        self.change_records(object, which.into(), None)
    }

    /// [`Self::touch`] with the modification time `at` (later changes are
    /// still stamped after it).
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn touch_at(
        &self,
        object: &str,
        which: impl Into<Selection>,
        at: DateTime<Utc>,
    ) -> Vec<String> {
        self.change_records(object, which.into(), Some(at))
    }

    fn change_records(
        &self,
        object: &str,
        which: Selection,
        at: Option<DateTime<Utc>>,
    ) -> Vec<String> {
        let spec = self.spec(object);
        let schema = self.kind.schema();
        let mut state = self.shared.lock();
        let at = match at {
            Some(t) => {
                state.store.note(t);
                t
            }
            None => state.store.stamp(),
        };
        let table = state.store.table(spec);
        let numbers = select(schema, spec.name, table, &which);
        let mut ids = Vec::with_capacity(numbers.len());
        for n in numbers {
            let Some(mut record) = table.get(schema, spec.name, n) else {
                continue;
            };
            record.version += 1;
            record.modified = at;
            let patch = schema.touched(spec.name, &record);
            table.change(n, patch, at);
            ids.push(schema.id(spec.name, n));
        }
        ids
    }

    /// Deletes (archives) the selected records of `object` now; their
    /// provider ids. They leave every list, and appear in HubSpot's
    /// `archived=true` one.
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn delete(&self, object: &str, which: impl Into<Selection>) -> Vec<String> {
        let spec = self.spec(object);
        let schema = self.kind.schema();
        let mut state = self.shared.lock();
        let at = state.store.stamp();
        let table = state.store.table(spec);
        let numbers = select(schema, spec.name, table, &which.into());
        numbers
            .into_iter()
            .map(|n| {
                table.delete(n, at);
                schema.id(spec.name, n)
            })
            .collect()
    }

    /// Creates a record of `object` now, as a user at the provider would:
    /// `fields` (a JSON object in the provider's naming, e.g. HubSpot
    /// properties) over the values a generated record of its number would
    /// have. Its provider id.
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn create(&self, object: &str, fields: Value) -> String {
        let spec = self.spec(object);
        let schema = self.kind.schema();
        let mut state = self.shared.lock();
        let at = state.store.stamp();
        let n = state.store.table(spec).create(at, |n| {
            let mut all = schema.generate(spec.name, n);
            if let Value::Object(given) = fields {
                all.extend(given);
            }
            all
        });
        schema.id(spec.name, n)
    }

    /// Record `id` of `object` as the provider's single-record read would
    /// return it now, or `None` if there is no such record (or it was
    /// deleted): what a test checks a sync wrote back.
    ///
    /// # Panics
    /// If the fake has no such object.
    pub fn record(&self, object: &str, id: impl Into<RecordRef>) -> Option<Value> {
        let spec = self.spec(object);
        let schema = self.kind.schema();
        let n = match id.into() {
            RecordRef::Number(n) => n,
            RecordRef::Id(id) => schema.number(spec.name, &id)?,
        };
        let record = self
            .shared
            .lock()
            .store
            .peek_record(schema, spec, n)
            .filter(|r| !r.deleted)?;
        Some(schema.render(spec.name, &record))
    }

    /// The creates, updates and deletes the fake's API applied, oldest
    /// first (kept whether recording is on or not).
    pub fn writes(&self) -> Vec<Write> {
        self.shared.lock().writes.clone()
    }

    /// Forgets the writes received so far.
    pub fn clear_writes(&self) {
        self.shared.lock().writes.clear();
    }
}

/// The existing records of `table` that `which` selects, in order.
fn select(
    schema: &dyn Schema,
    object: &'static str,
    table: &store::Table,
    which: &Selection,
) -> Vec<u64> {
    match which {
        Selection::Numbers(numbers) => numbers
            .iter()
            .copied()
            .filter(|n| table.exists(*n))
            .collect(),
        Selection::Ids(ids) => ids
            .iter()
            .filter_map(|id| schema.number(object, id))
            .filter(|n| table.exists(*n))
            .collect(),
        Selection::Fraction(share) => {
            let share = share.clamp(0.0, 1.0);
            let existing = table.existing();
            // Record i is picked when floor((i + 1) × share) steps up.
            existing
                .into_iter()
                .enumerate()
                .filter(|(i, _)| {
                    let before = (*i as f64 * share).floor();
                    let after = ((*i + 1) as f64 * share).floor();
                    after > before
                })
                .map(|(_, n)| n)
                .collect()
        }
        Selection::Matching(predicate) => table
            .existing()
            .into_iter()
            .filter(|n| predicate(*n))
            .collect(),
    }
}

impl Shared {
    /// Record `n` of `spec` if it exists (not deleted).
    pub(super) fn live_record(&self, spec: &ObjectSpec, n: u64) -> Option<Record> {
        self.lock()
            .store
            .peek_record(self.kind.schema(), spec, n)
            .filter(|r| !r.deleted)
    }

    /// The existing record of `spec` with provider id `id`.
    pub(super) fn find(&self, spec: &ObjectSpec, id: &str) -> Option<Record> {
        let n = self.kind.schema().number(spec.name, id)?;
        self.live_record(spec, n)
    }

    /// An update from the API: `patch` over record `n`, stamped now, if it
    /// exists and `check` (run under the same lock, e.g. QuickBooks'
    /// `SyncToken` test) passes; kept for [`FakeProvider::writes`]. The
    /// record after, `Err(None)` if there is no such record, `Err(Some(e))`
    /// if `check` refused.
    pub(super) fn api_update<E>(
        &self,
        spec: &ObjectSpec,
        n: u64,
        patch: Fields,
        check: impl FnOnce(&Record) -> Result<(), E>,
    ) -> Result<Record, Option<E>> {
        let schema = self.kind.schema();
        let mut state = self.lock();
        let current = state
            .store
            .peek_record(schema, spec, n)
            .filter(|r| !r.deleted)
            .ok_or(None)?;
        check(&current).map_err(Some)?;
        let at = state.store.stamp();
        let sent = Value::Object(patch.clone());
        let table = state.store.table(spec);
        table.change(n, patch, at);
        let record = table.get(schema, spec.name, n).ok_or(None)?;
        state.writes.push(Write {
            object: spec.name.to_owned(),
            id: schema.id(spec.name, n),
            op: WriteOp::Update,
            fields: sent,
            at,
        });
        Ok(record)
    }

    /// A create from the API: a record of the `fields` sent, plus what
    /// `complete` adds knowing its number (a provider's own numbering),
    /// stamped now, kept for [`FakeProvider::writes`] (as sent).
    pub(super) fn api_create(
        &self,
        spec: &ObjectSpec,
        sent: Fields,
        complete: impl FnOnce(u64, &mut Fields),
    ) -> Record {
        let schema = self.kind.schema();
        let mut state = self.lock();
        let at = state.store.stamp();
        let mut fields = sent.clone();
        let n = state.store.table(spec).create(at, |n| {
            complete(n, &mut fields);
            fields.clone()
        });
        state.writes.push(Write {
            object: spec.name.to_owned(),
            id: schema.id(spec.name, n),
            op: WriteOp::Create,
            fields: Value::Object(sent),
            at,
        });
        Record {
            num: n,
            fields,
            created: at,
            modified: at,
            version: 0,
            deleted: false,
        }
    }

    /// A delete from the API of record `n`, if it exists (and `check`
    /// passes); kept for [`FakeProvider::writes`].
    pub(super) fn api_delete<E>(
        &self,
        spec: &ObjectSpec,
        n: u64,
        check: impl FnOnce(&Record) -> Result<(), E>,
    ) -> Result<(), Option<E>> {
        let schema = self.kind.schema();
        let mut state = self.lock();
        let current = state
            .store
            .peek_record(schema, spec, n)
            .filter(|r| !r.deleted)
            .ok_or(None)?;
        check(&current).map_err(Some)?;
        let at = state.store.stamp();
        state.store.table(spec).delete(n, at);
        state.writes.push(Write {
            object: spec.name.to_owned(),
            id: schema.id(spec.name, n),
            op: WriteOp::Delete,
            fields: Value::Object(Fields::new()),
            at,
        });
        Ok(())
    }

    /// Records `offset..offset + limit` of `q` over `spec` now, fetched
    /// under the lock and built outside it, with the total it matches.
    pub(super) fn query(
        &self,
        spec: &ObjectSpec,
        q: &Query,
        offset: u64,
        limit: u64,
    ) -> (Vec<Record>, u64) {
        let batch = {
            let state = self.lock();
            let view = state.store.view(spec);
            state.store.fetch(spec, &view, q, offset, limit)
        };
        let total = batch.total;
        (batch.records(self.kind.schema(), spec.name), total)
    }
}
