//! Prefilling `mailzone init` from Postfix's `main.cf` (postconf(5) syntax): the mail
//! host (`myhostname`) and the mail domains (`mydestination`, `virtual_mailbox_domains`,
//! `virtual_alias_domains`; `mydomain` when none is listed).
//!
//! Pure: the file's text is passed in. The syntax, as postconf(5) defines it: `name =
//! value` lines; a line starting with white space continues the previous one; empty lines
//! and lines whose first non-blank character is `#` are ignored; a later definition
//! replaces an earlier one; `$name`, `${name}` and `$(name)` expand to another parameter's
//! value (`${name?text}` to `text` when it is not empty, `${name:text}` when it is), `$$`
//! is a `$`. Lists are separated by commas and/or white space.

use std::collections::HashMap;

use super::Imported;

/// Expansion depth at which a parameter referring to itself is given up (Postfix stops
/// at 100 as well).
const MAX_EXPANSION_DEPTH: usize = 100;

/// The parameters a `main.cf` text defines, later definitions winning.
pub fn parameters(text: &str) -> HashMap<String, String> {
    let mut logical: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let continues = line.starts_with(char::is_whitespace);
        match logical.last_mut() {
            Some(last) if continues => {
                last.push(' ');
                last.push_str(trimmed);
            }
            _ => logical.push(trimmed.to_string()),
        }
    }
    logical
        .into_iter()
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// What `main.cf` tells about the mail host and its domains.
pub fn import(text: &str) -> Imported {
    let mut params = parameters(text);
    let mut imported = Imported::default();
    // Postfix's own defaults for the parameters mailzone reads (postconf(5)); the default
    // of `myhostname` (the machine's name) is not guessed here.
    if let Some(hostname) = params.get("myhostname").cloned()
        && !params.contains_key("mydomain")
        && let Some((_, domain)) = hostname.split_once('.')
    {
        params.insert("mydomain".into(), domain.to_string());
    }
    params
        .entry("mydestination".into())
        .or_insert_with(|| "$myhostname, localhost.$mydomain, localhost".into());
    let value = |name: &str| expand(&params, name, 0);

    let hostname = value("myhostname");
    if hostname.is_empty() {
        imported.note("myhostname is not set in main.cf (Postfix then uses the machine's name)");
    } else {
        imported.hostname = Some(hostname.to_ascii_lowercase());
    }
    for parameter in [
        "mydestination",
        "virtual_mailbox_domains",
        "virtual_alias_domains",
    ] {
        let list = value(parameter);
        for entry in split_list(&list) {
            domain_entry(&mut imported, parameter, entry);
        }
        let maps = parameter.replace("_domains", "_maps");
        if parameter != "mydestination"
            && !params.contains_key(parameter)
            && params.contains_key(&maps)
        {
            imported.note(format!(
                "{parameter} is not set, so Postfix takes its domains from {maps} (a lookup table): add them with --domain"
            ));
        }
    }
    if imported.domains.is_empty() {
        let domain = value("mydomain");
        if !domain.is_empty() && super::parse_domain(&domain).is_ok() {
            imported.add_domain(&domain.to_ascii_lowercase());
        }
    }
    imported
}

/// One entry of a domain list: a domain, or something Postfix resolves at run time
/// (lookup table, file, negation), which is noted instead.
fn domain_entry(imported: &mut Imported, parameter: &str, entry: &str) {
    let entry = entry.trim_end_matches('.').to_ascii_lowercase();
    let host = imported.hostname.clone().unwrap_or_default();
    if entry.starts_with('!') {
        return;
    }
    if entry.contains(':') || entry.starts_with('/') {
        imported.note(format!(
            "{parameter} names {entry}, a lookup table or file mailzone does not read: add its domains with --domain"
        ));
        return;
    }
    // Local delivery names, not mail domains of their own.
    if entry == "localhost" || entry.starts_with("localhost.") || entry == host {
        return;
    }
    match super::parse_domain(&entry) {
        Ok(_) => imported.add_domain(&entry),
        Err(e) => imported.note(format!("{parameter}: {entry:?} left out: {e}")),
    }
}

/// A Postfix list: entries separated by commas and/or white space.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
}

/// The value of `name` with every `$parameter` in it expanded (empty when unset).
fn expand(params: &HashMap<String, String>, name: &str, depth: usize) -> String {
    if depth > MAX_EXPANSION_DEPTH {
        return String::new();
    }
    let Some(value) = params.get(name) else {
        return String::new();
    };
    expand_text(params, value, depth + 1)
}

fn expand_text(params: &HashMap<String, String>, text: &str, depth: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let (reference, after) = match rest.chars().next() {
            Some(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                match rest[1..].find(close) {
                    Some(end) => (&rest[1..1 + end], &rest[end + 2..]),
                    None => (&rest[1..], ""),
                }
            }
            _ => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        out.push_str(&expand_reference(params, reference, depth));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `name`, `name?text` (text when name is not empty) or `name:text` (text when empty).
fn expand_reference(params: &HashMap<String, String>, reference: &str, depth: usize) -> String {
    if let Some((name, text)) = reference.split_once('?') {
        let value = expand(params, name, depth);
        return if value.is_empty() {
            String::new()
        } else {
            expand_text(params, text, depth + 1)
        };
    }
    if let Some((name, text)) = reference.split_once(':') {
        let value = expand(params, name, depth);
        return if value.is_empty() {
            expand_text(params, text, depth + 1)
        } else {
            String::new()
        };
    }
    expand(params, reference, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_continuation_lines_comments_and_the_last_definition() {
        let params = parameters(
            "# comment\nmyhostname = first.example\nmydestination = a.example,\n    b.example\n  # indented comment\n\tc.example\nmyhostname = mx1.example.org\n",
        );
        assert_eq!(params["myhostname"], "mx1.example.org");
        assert_eq!(params["mydestination"], "a.example, b.example c.example");
    }

    #[test]
    fn expands_parameters_in_every_spelling() {
        let params = parameters(
            "myhostname = mx1.example.org\nmydomain = example.org\nx = $mydomain ${myhostname} $(mydomain) $$mydomain ${unset?yes}${mydomain?set} ${unset:empty}\nloop = $loop\n",
        );
        assert_eq!(
            expand(&params, "x", 0),
            "example.org mx1.example.org example.org $mydomain set empty"
        );
        assert_eq!(expand(&params, "loop", 0), "");
    }

    #[test]
    fn imports_the_host_and_the_domains() {
        let imported = import(
            "myhostname = mx1.example.org\nmydomain = example.org\nmydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\nvirtual_mailbox_domains = example.net,Shop.Example.NET  hash:/etc/postfix/vdomains\n  example.net\n",
        );
        assert_eq!(imported.hostname.as_deref(), Some("mx1.example.org"));
        assert_eq!(
            imported.domains,
            ["example.org", "example.net", "shop.example.net"]
        );
        assert_eq!(imported.notes.len(), 1, "{:?}", imported.notes);
        assert!(imported.notes[0].contains("hash:/etc/postfix/vdomains"));
    }

    #[test]
    fn defaults_follow_postfix() {
        // mydomain defaults to myhostname minus its first label; mydestination to
        // `$myhostname, localhost.$mydomain, localhost`, which names no mail domain: the
        // domain offered is then mydomain.
        let imported = import("myhostname = mail.example.com\n");
        assert_eq!(imported.domains, ["example.com"]);
        let none = import("compatibility_level = 3.6\n");
        assert_eq!(none.hostname, None);
        assert!(none.domains.is_empty());
        assert!(none.notes[0].contains("myhostname is not set"));
    }

    #[test]
    fn notes_domains_kept_in_lookup_tables() {
        let imported = import(
            "myhostname = mx.example.org\nvirtual_mailbox_maps = hash:/etc/postfix/vmailbox\n",
        );
        assert!(
            imported
                .notes
                .iter()
                .any(|n| n.contains("virtual_mailbox_domains is not set")),
            "{:?}",
            imported.notes
        );
    }
}
