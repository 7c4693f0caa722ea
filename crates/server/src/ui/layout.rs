//! The frame of every page (header, navigation, the status badge, sign-out) and the small
//! pieces pages share: times, table headers, copyable values, error pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use mailzone_check::Severity;
use mailzone_store::TaskStatus;
use maud::{DOCTYPE, Markup, html};

use super::session::{Session, csrf_field};
use crate::state::AppState;

/// The navigation entries; the current one is marked for screen readers and styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Domains,
    DnsServers,
    Tasks,
    None,
}

const NAV: [(Nav, &str, &str); 3] = [
    (Nav::Domains, "/ui/domains", "Domains"),
    (Nav::DnsServers, "/ui/dns-servers", "DNS servers"),
    (Nav::Tasks, "/ui/tasks", "Tasks"),
];

/// A page being built: its title, where it sits in the navigation, and its content.
pub struct Page {
    title: String,
    nav: Nav,
    body: Markup,
    /// The header (navigation, badge, sign-out) of a signed-in page.
    header: Option<Markup>,
}

impl Page {
    /// A page without the signed-in header (sign-in, errors).
    pub fn bare(title: &str, body: Markup) -> Page {
        Page {
            title: title.to_string(),
            nav: Nav::None,
            body,
            header: None,
        }
    }

    /// A signed-in page: the header shows the navigation, the status badge (failed tasks,
    /// domains whose last check found errors) and the sign-out button.
    pub async fn signed_in(
        state: &AppState,
        session: &Session,
        nav: Nav,
        title: &str,
        body: Markup,
    ) -> Page {
        let badge = status_badge(state).await;
        let header = html! {
            nav.main aria-label="Main" {
                a.brand href="/ui/domains" { "mailzone" }
                ul {
                    @for (entry, href, label) in NAV {
                        li {
                            @if entry == nav {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                }
                (badge)
                form.sign-out method="post" action="/ui/sign-out" {
                    (csrf_field(session))
                    span.who { (session.label) }
                    button type="submit" { "Sign out" }
                }
            }
        };
        Page {
            title: title.to_string(),
            nav,
            body,
            header: Some(header),
        }
    }

    /// The whole HTML document.
    pub fn render(self) -> Html<String> {
        let current = match self.nav {
            Nav::None => "",
            _ => " · mailzone",
        };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) (current) }
                    link rel="stylesheet" href="/ui/assets/app.css";
                    script src="/ui/assets/app.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    @if let Some(header) = self.header {
                        header { (header) }
                    }
                    main #main { (self.body) }
                }
            }
        };
        Html(markup.into_string())
    }
}

/// The response of a signed-in page (see [`Page::signed_in`]).
pub async fn signed_in_page(
    state: &AppState,
    session: &Session,
    nav: Nav,
    title: &str,
    body: Markup,
) -> Response {
    Page::signed_in(state, session, nav, title, body)
        .await
        .render()
        .into_response()
}

/// The notice that an action succeeded, shown after its redirect (`text` is a fixed
/// sentence, never text from the query).
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.alert.ok #notice role="status" { (text) }
        }
    }
}

/// The header's live summary: failed tasks and domains whose last check found errors.
async fn status_badge(state: &AppState) -> Markup {
    let failed = match state.store.task_counts().await {
        Ok(counts) => counts
            .iter()
            .find(|(status, _)| *status == TaskStatus::Failed)
            .map_or(0, |(_, n)| *n),
        Err(e) => {
            tracing::warn!("status badge: {e}");
            0
        }
    };
    let with_errors = state
        .last_checks
        .read()
        .map(|checks| {
            checks
                .values()
                .filter(|c| c.count(Severity::Error) > 0)
                .count()
        })
        .unwrap_or(0);
    html! {
        div.status #status-badge data-live="5" role="status" aria-live="polite" {
            @if failed > 0 {
                a.badge.error href="/ui/tasks?status=Failed" { (plural(failed as usize, "failed task")) }
            }
            @if with_errors > 0 {
                a.badge.error href="/ui/domains?status=errors" { (plural(with_errors, "domain")) " with errors" }
            }
            @if failed == 0 && with_errors == 0 {
                span.badge.ok { "All good" }
            }
        }
    }
}

/// "1 domain", "3 domains".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A Unix time as RFC 3339, in a `<time>` element with a relative label ("5 min ago").
pub fn time(unix: i64, now: i64) -> Markup {
    let exact = mailzone_engine::clock::rfc3339(unix);
    html! { time datetime=(exact) title=(exact) { (relative(unix, now)) } }
}

/// "just now", "5 min ago", "in 2 h", "3 days ago".
pub fn relative(unix: i64, now: i64) -> String {
    let delta = now - unix;
    let (amount, future) = (delta.unsigned_abs(), delta < 0);
    let text = match amount {
        0..=9 => return "just now".to_string(),
        10..=59 => format!("{amount} s"),
        60..=3599 => format!("{} min", amount / 60),
        3600..=86_399 => format!("{} h", amount / 3600),
        _ => plural((amount / 86_400) as usize, "day"),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A value shown as code with a copy button (shown only when scripts run: without them
/// the value is still selectable). `label` names what is copied, for screen readers.
pub fn copyable(value: &str, label: &str) -> Markup {
    html! {
        span.copyable {
            code { (value) }
            button.copy type="button" hidden data-copy=(value) aria-label=(format!("Copy {label}")) { "Copy" }
        }
    }
}

/// A table's header row: one column header per name.
pub fn column_headers(names: &[&str]) -> Markup {
    html! {
        thead { tr { @for name in names { th scope="col" { (name) } } } }
    }
}

/// A page that says what went wrong (no session needed, nothing secret in `message`).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        section.error-page {
            h1 { (reason) }
            p role="alert" { (message) }
            p { a href="/ui/domains" { "Back to the domains" } }
        }
    };
    (status, Page::bare(reason, body).render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(100, 105), "just now");
        assert_eq!(relative(100, 130), "30 s ago");
        assert_eq!(relative(0, 600), "10 min ago");
        assert_eq!(relative(7200, 0), "in 2 h");
        assert_eq!(relative(0, 86_400), "1 day ago");
        assert_eq!(relative(0, 3 * 86_400 + 5), "3 days ago");
    }

    #[test]
    fn values_are_escaped() {
        let markup = copyable("v=DKIM1; p=<x>\"", "value").into_string();
        assert!(markup.contains("p=&lt;x&gt;&quot;"), "{markup}");
        assert!(!markup.contains("<x>"));
    }
}
