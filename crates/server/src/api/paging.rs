//! Pages of a list: the body stays a JSON array (the page), and two headers say where it
//! stands in the whole list: `X-Total-Count` (how many items the list holds) and, per
//! RFC 8288, a `Link` header with the `next` page (and the `prev` one) as URI references
//! relative to the request, its other query parameters kept.

use axum::Json;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The header carrying the number of items of the whole list.
pub const TOTAL_COUNT: &str = "x-total-count";

/// Which part of a list was asked for: `offset` items skipped, at most `limit` shown (all
/// when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: u64,
    pub limit: Option<u64>,
}

impl Window {
    /// The items of a list of `total` the window shows, as a range of indexes.
    pub fn range(&self, total: u64) -> std::ops::Range<u64> {
        let start = self.offset.min(total);
        let end = match self.limit {
            Some(limit) => start.saturating_add(limit).min(total),
            None => total,
        };
        start..end
    }
}

/// The `Link` header value for `window` over a list of `total` items asked for at `uri`:
/// `next` when items follow the page, `prev` when items come before it; `None` when the
/// page is the whole list (or there is no limit to page by).
pub fn link(uri: &Uri, window: Window, total: u64) -> Option<String> {
    let limit = window.limit?;
    let mut links = Vec::new();
    let end = window.offset.saturating_add(limit);
    if end < total {
        links.push(format!("<{}>; rel=\"next\"", page_uri(uri, end, limit)));
    }
    if window.offset > 0 {
        // Past the end, the previous page is the last one.
        let prev = if window.offset >= total {
            total.saturating_sub(limit)
        } else {
            window.offset.saturating_sub(limit)
        };
        links.push(format!("<{}>; rel=\"prev\"", page_uri(uri, prev, limit)));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

/// `uri` with `offset` and `limit` set, its other query parameters kept in order.
fn page_uri(uri: &Uri, offset: u64, limit: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if key != "offset" && key != "limit" {
            query.append_pair(&key, &value);
        }
    }
    query.append_pair("offset", &offset.to_string());
    query.append_pair("limit", &limit.to_string());
    format!("{}?{}", uri.path(), query.finish())
}

/// The page as a JSON array with its `X-Total-Count` and `Link` headers.
pub fn response(uri: &Uri, window: Window, total: u64, page: Vec<Value>) -> Response {
    let mut response = Json(Value::Array(page)).into_response();
    let headers = response.headers_mut();
    headers.insert(TOTAL_COUNT, HeaderValue::from(total));
    if let Some(link) = link(uri, window, total)
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        headers.insert(header::LINK, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn the_next_page_follows_until_the_end() {
        let u = uri("/api/v1/domains?limit=100");
        let first = Window {
            offset: 0,
            limit: Some(100),
        };
        assert_eq!(
            link(&u, first, 250).as_deref(),
            Some("</api/v1/domains?offset=100&limit=100>; rel=\"next\"")
        );
        let last = Window {
            offset: 200,
            limit: Some(100),
        };
        assert_eq!(last.range(250), 200..250);
        assert_eq!(
            link(&u, last, 250).as_deref(),
            Some("</api/v1/domains?offset=100&limit=100>; rel=\"prev\"")
        );
        // The whole list on one page, or no limit: nothing to link.
        assert_eq!(link(&u, first, 100), None);
        let all = Window {
            offset: 0,
            limit: None,
        };
        assert_eq!(link(&u, all, 100_000), None);
        assert_eq!(all.range(7), 0..7);
    }

    #[test]
    fn other_parameters_are_kept() {
        let u = uri("/api/v1/tasks?status=Failed&offset=10&limit=5");
        let w = Window {
            offset: 10,
            limit: Some(5),
        };
        assert_eq!(
            link(&u, w, 100).as_deref(),
            Some(
                "</api/v1/tasks?status=Failed&offset=15&limit=5>; rel=\"next\", \
                 </api/v1/tasks?status=Failed&offset=5&limit=5>; rel=\"prev\""
            )
        );
    }

    #[test]
    fn an_offset_past_the_end_is_an_empty_page_pointing_back() {
        let w = Window {
            offset: 500,
            limit: Some(100),
        };
        assert_eq!(w.range(250), 250..250);
        assert_eq!(
            link(&uri("/api/v1/domains"), w, 250).as_deref(),
            Some("</api/v1/domains?offset=150&limit=100>; rel=\"prev\"")
        );
    }
}
