//! The proof that the browser harness works: a real headless Chromium opens pages served
//! on loopback under a strict `Content-Security-Policy`, a copy button's value is read
//! back from the clipboard, screenshots are PNG files, axe-core finds a violation where
//! there is one and none of serious impact on a clean page, the phone width applies, and
//! no Chromium process outlives its `Browser`.
//!
//! Missing Chromium, chromedriver or axe-core skips these tests, or fails them under
//! `MAILZONE_REQUIRE_TOOLS=1`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use mailzone_testkit::browser::{self, Browser, DESKTOP, PHONE};

/// The UI's policy: no inline script, no eval, scripts from the page's own origin only.
const CSP: &str = "default-src 'self'; script-src 'self'";

/// A DKIM-like value longer than any single line: what the copy buttons exist for.
fn long_value() -> String {
    let key: String = (0..582)
        .map(|i| {
            char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64])
        })
        .collect();
    format!("v=DKIM1; k=rsa; p={key}")
}

fn copy_page() -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Records</title>
<script src="/copy.js" defer></script>
</head>
<body>
<main>
<h1>Records of example.test</h1>
<p><code id="spf">v=spf1 mx -all</code>
<button type="button" id="copy-spf" data-copy="v=spf1 mx -all">Copy SPF</button></p>
<p><button type="button" id="copy-dkim" data-copy="{long}">Copy DKIM</button></p>
<p id="status" role="status"></p>
<script>document.title = "inline script ran";</script>
</main>
</body>
</html>"#,
        long = long_value()
    )
}

const COPY_JS: &str = r#"document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      navigator.clipboard.writeText(button.dataset.copy).then(
        () => { document.getElementById("status").textContent = "Copied " + button.id; },
        (error) => { document.getElementById("status").textContent = "Failed: " + error; });
    });
  }
});
"#;

const UNLABELED_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Add a domain</title></head>
<body><main><h1>Add a domain</h1>
<form><input type="text" name="domain"><button type="submit">Add</button></form>
</main></body>
</html>"#;

const CLEAN_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Add a domain</title></head>
<body><main><h1>Add a domain</h1>
<form><label for="domain">Domain</label> <input type="text" id="domain" name="domain">
<button type="submit">Add</button></form>
</main></body>
</html>"#;

/// A tiny HTTP/1.1 server on a loopback port, one thread per connection, answering every
/// page with the strict CSP header; lives as long as the test process.
fn serve() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body) = match path {
        "/" => ("200 OK", "text/html; charset=utf-8", copy_page()),
        "/copy.js" => ("200 OK", "text/javascript", COPY_JS.to_owned()),
        "/unlabeled" => (
            "200 OK",
            "text/html; charset=utf-8",
            UNLABELED_PAGE.to_owned(),
        ),
        "/clean" => ("200 OK", "text/html; charset=utf-8", CLEAN_PAGE.to_owned()),
        _ => ("404 Not Found", "text/plain", "not found".to_owned()),
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {CSP}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Processes whose command line names `needle`.
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

#[tokio::test]
async fn copy_buttons_fill_the_clipboard_under_a_strict_csp() {
    let started = Instant::now();
    let Some(browser) = Browser::start().await else {
        return;
    };
    eprintln!("browser started in {:?}", started.elapsed());
    // Every Chromium process names the browser's temporary directory (its profile, its HOME).
    let dir = browser
        .profile_dir()
        .parent()
        .expect("dir")
        .display()
        .to_string();
    let client = browser.client();
    let port = serve();

    let opened = Instant::now();
    client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .expect("open the page");
    eprintln!("page opened in {:?}", opened.elapsed());
    // The CSP applies: the page's inline script did not run.
    assert_eq!(client.title().await.expect("title"), "Records");
    assert_eq!(browser.viewport().await, DESKTOP);

    browser::grant_clipboard(client).await;
    browser::click(client, "#copy-spf").await;
    browser::wait_for_text(client, "#status", "Copied copy-spf", Duration::from_secs(5)).await;
    assert_eq!(browser::read_clipboard(client).await, "v=spf1 mx -all");

    browser::click(client, "#copy-dkim").await;
    browser::wait_for_text(
        client,
        "#status",
        "Copied copy-dkim",
        Duration::from_secs(5),
    )
    .await;
    let copied = browser::read_clipboard(client).await;
    assert_eq!(copied.len(), 600);
    assert_eq!(copied, long_value());

    // The rendered HTML is the DOM now: the status the script wrote is in it.
    let html = browser::page_html(client).await;
    assert!(html.contains("Copied copy-dkim"), "{html}");

    let shots = tempfile::tempdir().expect("tempdir");
    let path = browser::screenshot_to(client, &shots.path().join("new"), "records").await;
    assert_eq!(path, shots.path().join("new/records.png"));
    let png = std::fs::read(&path).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    // axe runs under the page's CSP (WebDriver scripts are not subject to it).
    let axe = Instant::now();
    browser::assert_no_serious_axe_violations(client, "records").await;
    eprintln!("axe ran in {:?}", axe.elapsed());

    browser.set_phone_width().await;
    assert_eq!(browser.viewport().await, PHONE);
    let phone_png = std::fs::read(browser::screenshot_to(client, shots.path(), "phone").await)
        .expect("phone screenshot");
    // PNG IHDR: the width is the 4 bytes at offset 16.
    assert_eq!(&phone_png[16..20], &PHONE.0.to_be_bytes());
    browser.set_desktop_width().await;
    assert_eq!(browser.viewport().await.0, DESKTOP.0);

    let running = processes_naming(&dir);
    assert!(
        running.len() > 3,
        "Chromium not found by its directory: {running:#?}"
    );
    assert!(
        running
            .iter()
            .any(|p| p.contains("chrome_crashpad_handler")),
        "the crash handler names the directory too: {running:#?}"
    );
    let closing = Instant::now();
    drop(browser);
    eprintln!("browser closed in {:?}", closing.elapsed());
    let left = processes_naming(&dir);
    assert!(left.is_empty(), "left running: {left:#?}");
}

#[tokio::test]
async fn axe_finds_an_unlabeled_input_and_passes_a_labeled_one() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();
    let port = serve();

    client
        .goto(&format!("http://127.0.0.1:{port}/unlabeled"))
        .await
        .expect("open");
    let violations = browser::axe_violations(client).await;
    let label = violations
        .iter()
        .find(|violation| violation.id == "label")
        .unwrap_or_else(|| panic!("no `label` violation in {violations:#?}"));
    assert!(label.is_serious(), "{label}");
    assert_eq!(label.targets, ["input"]);
    eprintln!("the assertion must fail; its panic message follows:");
    let failed = tokio::spawn({
        let client = client.clone();
        async move { browser::assert_no_serious_axe_violations(&client, "unlabeled").await }
    })
    .await;
    let message = failed.expect_err("the assertion must fail").into_panic();
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("serious accessibility violations on unlabeled")
            && message.contains("label ("),
        "{message}"
    );

    fill_and_check(client, port).await;
}

/// The clean page: no serious violation, and the form helpers work on it.
async fn fill_and_check(client: &fantoccini::Client, port: u16) {
    client
        .goto(&format!("http://127.0.0.1:{port}/clean"))
        .await
        .expect("open");
    browser::assert_no_serious_axe_violations(client, "clean").await;
    browser::fill(client, "#domain", "old.test").await;
    browser::fill(client, "#domain", "example.test").await;
    let value = browser::find(client, "#domain")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(value.as_deref(), Some("example.test"));
}
