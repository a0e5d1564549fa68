//! What every list route shares: the page parameters (`limit`, `cursor`,
//! [`ListParams`], taken as their own query next to a route's filters), their
//! bounds and errors, the `{"data": […], "next_cursor": …}` page, and the
//! checks of the filters.
//!
//! Lists are keyset-paged on UUIDv7 ids: a cursor (`hub_domain::cursor`)
//! encodes the id of a page's last item, and the next page starts after it
//! (or before it, for newest-first lists).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use hub_domain::status::UnknownStatus;
use hub_platform::error::{ApiError, ErrorCode};
pub use hub_platform::http::{ListParams, Page};
use serde::de::DeserializeOwned;
use std::str::FromStr;
use uuid::Uuid;

/// A list request: the route's filters and the page asked for, both from
/// the query string (the framework's `invalid_parameter` for a value of the
/// wrong type, then the page's bounds). Its OpenAPI parameters are the
/// filters' and then [`ListParams`].
pub struct ListQuery<F> {
    /// The route's filters.
    pub filter: F,
    /// The page.
    pub paging: Paging,
}

impl<F: DeserializeOwned + 'static> FromRequest for ListQuery<F> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parse = || {
            let filter = web::Query::<F>::extract(req).into_inner()?.into_inner();
            let page = web::Query::<ListParams>::extract(req).into_inner()?;
            Ok(Self {
                filter,
                paging: Paging::parse(&page)?,
            })
        };
        std::future::ready(parse())
    }
}

/// The filters of a list that has none.
#[derive(Debug, serde::Deserialize)]
pub struct NoFilter {}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// Items asked for, 1–200 (50 when not given).
    pub limit: u32,
    /// Where the previous page stopped: the id its cursor encodes.
    pub cursor: Option<Uuid>,
}

impl Paging {
    /// `limit` within its bounds and `cursor` decoded (`invalid_parameter`
    /// otherwise).
    pub fn parse(q: &ListParams) -> Result<Self, ApiError> {
        let (limit, cursor) = q.parse()?;
        Ok(Self { limit, cursor })
    }

    /// Rows to read: one more than asked, so that the page knows whether
    /// another follows (for storage lists that do not add it themselves).
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }

    /// The page of `items` (read with [`Paging::fetch`]).
    pub fn page_of<B: Listed>(&self, items: Vec<B>) -> Page<B> {
        Page::new(items, self.limit, B::id)
    }

    /// The page of `rows`, each shown as a `B` (a body holding its row).
    pub fn page<R, B: Listed + From<R>>(&self, rows: Vec<R>) -> Page<B> {
        self.page_of(rows.into_iter().map(B::from).collect())
    }
}

/// An item of a list: its id is the position a cursor encodes.
pub trait Listed {
    /// The item's id.
    fn id(&self) -> Uuid;
}

/// A filter compared with stored upper-case values, upper-cased.
pub fn upper(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.to_ascii_uppercase())
}

/// `text` (any case) as a status `S` (`hub_domain::status`), or the
/// message naming its values: `must be A, B or C`.
pub fn status_of<S: FromStr<Err = UnknownStatus>>(text: &str) -> Result<S, String> {
    text.to_ascii_uppercase()
        .parse()
        .map_err(|e: UnknownStatus| format!("must be {}", either(e.expected)))
}

/// A status filter (any case); `invalid_parameter` naming the status's
/// values otherwise.
pub fn status_filter<S: FromStr<Err = UnknownStatus>>(
    param: &str,
    value: &Option<String>,
) -> Result<Option<S>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            status_of(v).map_err(|message| {
                ApiError::new(ErrorCode::InvalidParameter, format!("{param}: {message}"))
            })
        })
        .transpose()
}

/// `A, B or C`.
pub fn either(options: &[&str]) -> String {
    match options {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_domain::status::DeliveryStatus;

    #[test]
    fn filters_name_their_options() {
        assert_eq!(either(&["A", "B", "C"]), "A, B or C");
        assert_eq!(either(&["A", "B"]), "A or B");
        assert_eq!(
            status_filter("status", &Some("failed".into())).unwrap(),
            Some(DeliveryStatus::Failed)
        );
        assert_eq!(
            status_filter::<DeliveryStatus>("status", &None).unwrap(),
            None
        );
        assert_eq!(
            status_of::<DeliveryStatus>("x").unwrap_err(),
            "must be PENDING, RETRYING, DELIVERED or FAILED"
        );
        assert!(status_filter::<DeliveryStatus>("status", &Some("x".into())).is_err());
    }
}
