//! Trends: crashes per day, from the daily counts the index keeps (they outlive
//! the reports). The window of days a chart or the API covers, and the JSON
//! routes `GET /api/v1/issues/{id}/daily` and `GET /api/v1/daily`; the pages
//! draw the same counts with [`pages::chart`](super::pages::chart).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::query::ApiQuery;
use crate::index::{ProductDay, date_of, day_of, now_ms};
use crate::triage::TriageState;

/// The most days a window covers.
pub const MAX_DAYS: i64 = 365;

/// The days the API covers when not asked.
pub const DEFAULT_DAYS: i64 = 30;

/// A run of whole UTC days ending today: what a chart or the API covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first day ([`day_of`]).
    pub first_day: i64,
    /// How many days, 1..=[`MAX_DAYS`].
    pub days: i64,
}

impl Window {
    /// The last `days` days up to today; `days` outside 1..=[`MAX_DAYS`] is refused.
    pub fn last(days: i64) -> Result<Window, ApiError> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::BadRequest(format!(
                "days must be between 1 and {MAX_DAYS}"
            )));
        }
        Ok(Window {
            first_day: day_of(now_ms()) - (days - 1),
            days,
        })
    }

    /// The last day (today, when the window was made).
    pub fn last_day(&self) -> i64 {
        self.first_day + self.days - 1
    }

    /// Where `day` is in the window (0 = the first day), if it is.
    pub fn position(&self, day: i64) -> Option<usize> {
        let at = day - self.first_day;
        (0..self.days).contains(&at).then_some(at as usize)
    }

    /// The window's bounds as JSON fields.
    fn bounds(&self) -> Value {
        json!({
            "days": self.days,
            "first_day": self.first_day,
            "last_day": self.last_day(),
            "from": date_of(self.first_day),
            "to": date_of(self.last_day()),
        })
    }
}

/// Query of the daily routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// Days up to today, 1..=365 (default 30).
    pub days: Option<i64>,
    /// Only this product (`GET /api/v1/daily`).
    pub product: Option<String>,
}

impl DailyQuery {
    fn window(&self) -> Result<Window, ApiError> {
        Window::last(self.days.unwrap_or(DEFAULT_DAYS))
    }
}

/// `bounds` with the `counts` field.
fn with_counts(mut bounds: Value, key: &str, value: Value, counts: Vec<Value>) -> Value {
    bounds[key] = value;
    bounds["counts"] = Value::Array(counts);
    bounds
}

/// The rows of `window` as JSON, each with its `date` beside its `day`.
fn dated<T: Serialize>(window: Window, rows: Vec<T>, day: fn(&T) -> i64) -> Vec<Value> {
    rows.into_iter()
        .filter(|row| window.position(day(row)).is_some())
        .map(|row| {
            let date = date_of(day(&row));
            let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
            value["date"] = Value::String(date);
            value
        })
        .collect()
}

/// Counts per day and product in `window` (of `product` only, when given), as
/// `caller` reads them: audited.
pub async fn product_days(
    state: &TriageState,
    caller: &Caller,
    product: Option<&str>,
    window: Window,
) -> Result<Vec<ProductDay>, ApiError> {
    let rows = state
        .index()
        .product_daily(product, window.first_day)
        .await?;
    let target = product.unwrap_or("all products");
    state
        .index()
        .audit(&caller.token_id, "daily.read", target, None)
        .await?;
    Ok(rows)
}

/// `GET /api/v1/issues/{id}/daily?days=30`: the issue's counts per day, product
/// and version in the window (days without a count left out), oldest first.
#[utoipa::path(get, path = "/api/v1/issues/{id}/daily", params(("id" = i64, Path, description = "Issue id"), DailyQuery), responses(
    (status = 200, description = "The issue's counts per day, product and version.", body = super::schemas::IssueDaily),
    (status = 400, description = "`days` outside 1..=365.", body = super::error::ErrorBody),
    (status = 404, description = "No such issue.", body = super::error::ErrorBody),
))]
pub async fn issue_daily(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiQuery(query): ApiQuery<DailyQuery>,
) -> Result<Json<Value>, ApiError> {
    let window = query.window()?;
    state.index().issue(id).await?.ok_or(ApiError::NotFound)?;
    let rows = state.index().issue_daily(id, window.first_day).await?;
    state
        .index()
        .audit(&caller.token_id, "issue.daily", &id.to_string(), None)
        .await?;
    let counts = dated(window, rows, |row| row.day);
    Ok(Json(with_counts(
        window.bounds(),
        "issue_id",
        json!(id),
        counts,
    )))
}

/// `GET /api/v1/daily?product=…&days=30`: counts per day and product over all
/// issues (of the product only, when given), days without a count left out,
/// oldest first.
#[utoipa::path(get, path = "/api/v1/daily", params(DailyQuery), responses(
    (status = 200, description = "Counts per day and product.", body = super::schemas::ProductDaily),
    (status = 400, description = "`days` outside 1..=365.", body = super::error::ErrorBody),
))]
pub async fn product_daily(
    State(state): State<TriageState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DailyQuery>,
) -> Result<Json<Value>, ApiError> {
    let window = query.window()?;
    let product = query.product.as_deref();
    let rows = product_days(&state, &caller, product, window).await?;
    let counts = dated(window, rows, |row| row.day);
    Ok(Json(with_counts(
        window.bounds(),
        "product",
        json!(product),
        counts,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded_and_end_today() {
        assert!(Window::last(0).is_err());
        assert!(Window::last(-3).is_err());
        assert!(Window::last(MAX_DAYS + 1).is_err());
        let window = Window::last(30).unwrap();
        assert_eq!(window.last_day(), day_of(now_ms()));
        assert_eq!(window.position(window.first_day), Some(0));
        assert_eq!(window.position(window.last_day()), Some(29));
        assert_eq!(window.position(window.first_day - 1), None);
        assert_eq!(window.position(window.last_day() + 1), None);
        assert_eq!(Window::last(1).unwrap().days, 1);
    }
}
