//! Error answers: every failure is `{"error": {"code", "message"}}` JSON with the status
//! its class calls for, including axum's own rejections; JSON bodies (415 otherwise) and
//! RFC 7396 merge patches.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mailzone_engine::EngineError;
use mailzone_engine::error::FailureClass;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The sentence the caller is shown (the web UI shows it above its form).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    /// The status says what happened (the error's class): a DNS server that cannot be
    /// reached now is `503` (try again later), one that answered with an error `502`, a
    /// zone changed meanwhile `409`, a config or request that cannot work `422`.
    fn from(e: EngineError) -> ApiError {
        let (status, code) = match e.class() {
            FailureClass::Store => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
            FailureClass::Unreachable => (StatusCode::SERVICE_UNAVAILABLE, "dns"),
            FailureClass::Unavailable
            | FailureClass::Refused
            | FailureClass::Auth
            | FailureClass::Protocol => (StatusCode::BAD_GATEWAY, "dns"),
            FailureClass::Conflict => (StatusCode::CONFLICT, "dns_conflict"),
            FailureClass::InvalidConfig | FailureClass::Other => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<mailzone_store::StoreError> for ApiError {
    fn from(e: mailzone_store::StoreError) -> ApiError {
        ApiError::from(EngineError::from(e))
    }
}

/// `Json<T>` whose rejections (malformed JSON, unknown fields, wrong content type, body
/// too large) are answered in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "bad_request",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(&format!("route {}", uri.path()))
}

/// A known path asked with a method it does not have; axum adds the `Allow` header.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// Every error answer under `/api/v1` in the API's shape: a rejection that axum answers by
/// itself before a handler runs (a path parameter that is not UTF-8, a body over the
/// limit) is plain text otherwise. Its headers (`Allow`, `WWW-Authenticate`) are kept.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejection texts are one short line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = ApiError::new(status, status_code_name(status), message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// The `code` of an error answer made from a bare status.
pub(crate) fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// `application/json` or a `+json` type such as `application/merge-patch+json` (RFC 7396
/// §4), with or without parameters (`; charset=utf-8`); media types are case-insensitive
/// (RFC 9110 §8.3.1).
pub(crate) fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that must be JSON: 415 for another `Content-Type` or none.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if given.is_some_and(is_json_media_type) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "the body must be JSON (`Content-Type: application/json`), not {}",
            given.map_or("a body without Content-Type".to_string(), |t| format!(
                "`{t}`"
            ))
        ),
    ))
}

/// A buffered request body: over [`MAX_BODY_BYTES`] a 413 in the API's shape.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        ApiError::new(status, status_code_name(status), rejection.body_text())
    })
}

/// A JSON object body of a write: 415 when not JSON, 400 when malformed, 422 when not an
/// object.
pub(crate) fn object_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    require_json(headers)?;
    let body = body_bytes(body)?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid JSON body: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("the body must be a JSON object")),
    }
}

/// An optional JSON body: none (or only whitespace) is `T::default()`; one given must be
/// JSON (415) that reads as `T` (400 otherwise, naming the problem).
pub(crate) fn optional_json_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body_bytes(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    require_json(headers)?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid JSON body: {e}"),
        )
    })
}

/// JSON merge patch (RFC 7396 §2): a `null` member removes the key, an object member is
/// merged into the object there, any other value replaces what was there.
pub(crate) fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(map) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(&key);
        } else {
            merge_patch(map.entry(key).or_insert(Value::Null), value);
        }
    }
}

/// 400 for a request the API cannot read (a query, a path).
pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The query string as `T`; one that does not fit the route's parameters is a 400 in
/// the API's error format.
pub(crate) struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| bad_request(rejection.body_text()))?;
        Ok(ApiQuery(value))
    }
}

#[cfg(test)]
mod error_status_tests {
    use mailzone_engine::error::ZoneFailure;
    use mailzone_records::Name;

    use super::*;

    fn status(e: EngineError) -> (StatusCode, &'static str) {
        let e = ApiError::from(e);
        (e.status, e.code)
    }

    fn unresolvable() -> EngineError {
        EngineError::Unreachable {
            file: "mailzone.toml".into(),
            dns_server: "primary".into(),
            host: "nonexistent.invalid".into(),
            reason: "no address".into(),
        }
    }

    /// The DNS errors' classes are tested in the engine; here, that the class decides.
    #[test]
    fn the_status_follows_the_failure_class() {
        assert_eq!(
            status(unresolvable()),
            (StatusCode::SERVICE_UNAVAILABLE, "dns")
        );
        let lagging = EngineError::Propagation {
            zone: "example.test".into(),
            server: "127.0.0.1:5300".parse().unwrap(),
            timeout: std::time::Duration::from_secs(2),
            reason: "serial 1".into(),
            others: 0,
        };
        assert_eq!(status(lagging), (StatusCode::BAD_GATEWAY, "dns"));
        let zones = EngineError::Zones(vec![
            ZoneFailure {
                zone: Name::host("a.test").unwrap(),
                dns_server: "one".into(),
                error: EngineError::InvalidConfig("unreadable secret".into()),
            },
            ZoneFailure {
                zone: Name::host("b.test").unwrap(),
                dns_server: "two".into(),
                error: unresolvable(),
            },
        ]);
        assert_eq!(status(zones), (StatusCode::SERVICE_UNAVAILABLE, "dns"));
        assert_eq!(
            status(EngineError::Usage("manual".into())),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
        );
    }
}
