//! Lists answer `{items, next}`; `next` is an opaque cursor (the hex of the last item's sort key)
//! that the client passes back as `cursor=` for the following page.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use utoipa::{
    openapi::{schema, RefOr},
    PartialSchema, ToSchema,
};

use super::problem::ApiError;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A page of `T` is the component `TPage` whose items refer to `T`'s component (utoipa's own
/// generics would copy `T` into every page, and generators would make a class of each copy). A
/// handler names it through an alias (`type RequestPage = Page<RequestView>`), as utoipa's path
/// macro wants a generic body to be composed by utoipa.
impl<T: ToSchema> PartialSchema for Page<T> {
    fn schema() -> RefOr<schema::Schema> {
        use schema::{ArrayBuilder, ObjectBuilder, Ref, SchemaType, Type};
        ObjectBuilder::new()
            .property("items", ArrayBuilder::new().items(Ref::from_schema_name(T::name())))
            .required("items")
            .property(
                "next",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some("pass as `cursor=` for the next page; null on the last")),
            )
            .required("next")
            .into()
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("{}Page", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<schema::Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

/// The paging part of a list's query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// A list's `limit=`: 1 to `MAX_LIMIT`, `DEFAULT_LIMIT` when not given.
pub fn checked_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::bad_query(format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

/// The cursor of a list read from a table in id order (`cursor=` is the last id shown); 0 from the start.
pub fn after_row(cursor: Option<&str>) -> Result<i64, ApiError> {
    cursor.map_or(Ok(0), |cursor| cursor.parse().map_err(|_| ApiError::bad_query("cursor is not one this server gave")))
}

impl<T> Page<T> {
    /// A page of rows read in id order, of which the caller read at most `limit + 1`: the one
    /// beyond the page only tells that another follows.
    pub fn of_rows(mut items: Vec<T>, limit: usize, id: impl Fn(&T) -> i64) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = more.then(|| items.last().map(|item| id(item).to_string())).flatten();
        Page { items, next }
    }
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        checked_limit(self.limit)
    }

    /// The sort key after which this page starts.
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        self.cursor
            .as_deref()
            .map(|cursor| {
                hex::decode(cursor)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| ApiError::bad_query("cursor is not one this server gave"))
            })
            .transpose()
    }

    /// The cursor of a list kept in id order (grants): the id after which this page starts.
    pub fn after_id(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.after()?
            .map(|key| key.parse().map_err(|_| ApiError::bad_query("cursor is not one this server gave")))
            .transpose()
    }

    /// One page of a list read in key order from the cursor on, of which the caller took at most
    /// `limit() + 1` items: the one beyond the page only tells that another page follows.
    pub fn page_read_in_order<T>(&self, mut items: Vec<(String, T)>) -> Result<Page<T>, ApiError> {
        let limit = self.limit()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = more.then(|| items.last().map(|(key, _)| hex::encode(key))).flatten();
        Ok(Page { items: items.into_iter().map(|(_, item)| item).collect(), next })
    }

    /// One page of `items` (each with its sort key), in key order after the cursor.
    pub fn page<T>(&self, mut items: Vec<(String, T)>) -> Result<Page<T>, ApiError> {
        let (limit, after) = (self.limit()?, self.after()?);
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let start = after.map_or(0, |after| items.partition_point(|(key, _)| *key <= after));
        let rest = items.len().saturating_sub(start);
        let mut page: Vec<(String, T)> = items.into_iter().skip(start).take(limit).collect();
        let next = (rest > limit).then(|| page.last().map(|(key, _)| hex::encode(key))).flatten();
        Ok(Page { items: page.drain(..).map(|(_, item)| item).collect(), next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let items = |n: usize| (0..n).map(|i| (format!("{i:04}"), i)).collect::<Vec<_>>();
        let mut query = PageQuery { cursor: None, limit: Some(3) };
        let mut seen = Vec::new();
        loop {
            let page = query.page(items(10)).unwrap();
            seen.extend(page.items);
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(PageQuery { cursor: Some("zz".into()), limit: None }.page(items(1)).is_err());
        assert!(PageQuery { cursor: None, limit: Some(0) }.page(items(1)).is_err());
    }
}
