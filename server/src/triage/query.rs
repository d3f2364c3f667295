//! Query parameters of the triage routes: a query that does not parse is a 400
//! that says why (JSON for the API, a page for pages), and offsets and page
//! numbers are bounded, so nothing computed from them overflows and no listing
//! asks the database to skip more than [`MAX_OFFSET`] rows.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, PageError};

/// The most rows a listing skips: deeper pages are refused with a 400.
pub const MAX_OFFSET: i64 = 1_000_000;

/// The query of an API route; one that does not parse is a 400 with a JSON error.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse(parts).map(ApiQuery)
    }
}

/// The query of a page; one that does not parse is a 400 error page.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PageError> {
        Ok(PageQuery(parse(parts)?))
    }
}

fn parse<T: DeserializeOwned>(parts: &Parts) -> Result<T, ApiError> {
    Query::try_from_uri(&parts.uri)
        .map(|Query(query)| query)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// The rows to skip: none when absent or negative; more than [`MAX_OFFSET`] is
/// refused.
pub fn offset(offset: Option<i64>) -> Result<i64, ApiError> {
    let offset = offset.unwrap_or(0).max(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::BadRequest(format!(
            "offset must be at most {MAX_OFFSET}"
        )));
    }
    Ok(offset)
}

/// A 1-based page of `size` rows (page 1 when absent or below 1) and the rows it
/// skips; a page past [`MAX_OFFSET`] is refused.
pub fn page(page: Option<i64>, size: i64) -> Result<(i64, i64), ApiError> {
    let page = page.unwrap_or(1).max(1);
    let last = MAX_OFFSET / size + 1;
    if page > last {
        return Err(ApiError::BadRequest(format!("page must be at most {last}")));
    }
    Ok((page, (page - 1) * size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_pages_are_bounded() {
        assert_eq!(offset(None).unwrap(), 0);
        assert_eq!(offset(Some(-5)).unwrap(), 0);
        assert_eq!(offset(Some(MAX_OFFSET)).unwrap(), MAX_OFFSET);
        assert!(offset(Some(i64::MAX)).is_err());
        assert_eq!(page(None, 25).unwrap(), (1, 0));
        assert_eq!(page(Some(i64::MIN), 25).unwrap(), (1, 0));
        assert_eq!(page(Some(3), 25).unwrap(), (3, 50));
        let (last, skipped) = page(Some(MAX_OFFSET / 25 + 1), 25).unwrap();
        assert!(skipped <= MAX_OFFSET);
        assert!(page(Some(last + 1), 25).is_err());
        assert!(page(Some(i64::MAX), 100).is_err());
    }
}
