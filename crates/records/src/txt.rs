//! TXT character-strings (RFC 1035 §3.3.14: each at most 255 octets; RFC 7208 §3.3 and
//! RFC 6376 §3.6.2.2: a long value is several strings that receivers join without spaces).

use std::fmt::Write as _;

/// RFC 1035 §3.3: a <character-string> holds at most 255 octets.
pub const MAX_STRING_LEN: usize = 255;

/// Splits the logical value of a TXT record into character-strings of at most 255 bytes.
/// An empty value is one empty string, as a TXT record needs at least one.
pub fn split(value: &[u8]) -> Vec<&[u8]> {
    if value.is_empty() {
        return vec![value];
    }
    value.chunks(MAX_STRING_LEN).collect()
}

/// Joins character-strings back into the logical value, the way SPF and DKIM receivers do.
pub fn join<S: AsRef<[u8]>>(strings: &[S]) -> Vec<u8> {
    strings
        .iter()
        .flat_map(|s| s.as_ref().iter().copied())
        .collect()
}

/// Renders one character-string in zone-file presentation form (RFC 1035 §5.1): quoted,
/// with `"` and `\` escaped and every byte outside printable ASCII written as `\DDD`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    write_quoted(&mut out, bytes);
    out
}

/// [`quote`] appended to `out`.
pub fn write_quoted(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

/// The whole TXT value as quoted character-strings separated by spaces.
pub fn presentation(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    write_presentation(&mut out, value);
    out
}

/// [`presentation`] appended to `out`.
pub fn write_presentation(out: &mut String, value: &[u8]) {
    for (i, part) in split(value).into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_quoted(out, part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_255_bytes() {
        let value = vec![b'a'; 600];
        let parts = split(&value);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(join(&parts), value);
        assert_eq!(split(b""), vec![b"" as &[u8]]);
        assert_eq!(split(&[b'x'; 255]).len(), 1);
        assert_eq!(split(&[b'x'; 256]).len(), 2);
    }

    #[test]
    fn escapes_quotes_backslashes_and_non_ascii() {
        assert_eq!(quote(br#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("é".as_bytes()), r#""\195\169""#);
        assert_eq!(quote(b"tab\there"), r#""tab\009here""#);
        assert_eq!(quote(b"v=spf1 -all; x"), r#""v=spf1 -all; x""#);
    }
}
