//! Header escaping: `\r` `\n` `\c` `\\` stand for CR, LF, colon and backslash in the
//! header names and values of every frame except CONNECT/STOMP/CONNECTED, from 1.1 on.
//!
//! The 1.1 spec defines only `\n \c \\`; `\r` arrived in 1.2. Like RabbitMQ we accept and
//! write `\r` in 1.1 too: without it a CR in a 1.1 header could not be written at all,
//! since a raw CR before the LF would read back as a CR LF line end. Any other escape
//! sequence is an error, as the spec requires ("MUST treat as a fatal protocol error").

use bytes::BufMut;

/// Whether `raw` needs [`unescape`] at all (most headers do not, and stay zero-copy).
pub fn has_escapes(raw: &[u8]) -> bool {
    raw.contains(&b'\\')
}

/// Decodes escape sequences. An undefined sequence is an error carrying the octet after
/// the backslash; for a backslash at the very end that is `after`, the octet that follows
/// `raw` on the wire (the colon or the line end), which is what RabbitMQ reports too.
pub fn unescape(raw: &[u8], after: u8) -> Result<Vec<u8>, u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b == b'\\' {
            let next = bytes.next().copied().unwrap_or(after);
            out.push(unescape_byte(next).ok_or(next)?);
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

/// Whether `\` followed by `b` is a defined escape sequence.
pub fn is_escape_code(b: u8) -> bool {
    unescape_byte(b).is_some()
}

fn unescape_byte(b: u8) -> Option<u8> {
    match b {
        b'r' => Some(b'\r'),
        b'n' => Some(b'\n'),
        b'c' => Some(b':'),
        b'\\' => Some(b'\\'),
        _ => None,
    }
}

/// Length of `raw` once escaped.
pub fn escaped_len(raw: &[u8]) -> usize {
    raw.len() + raw.iter().filter(|&&b| needs_escape(b)).count()
}

/// Writes `raw` with CR, LF, colon and backslash escaped. Colons are escaped in values
/// too, although a reader splits on the first colon: RabbitMQ does so, and a strict 1.1
/// reader requires it.
pub fn escape_into(raw: &[u8], out: &mut impl BufMut) {
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        let code = match b {
            b'\r' => b'r',
            b'\n' => b'n',
            b':' => b'c',
            b'\\' => b'\\',
            _ => continue,
        };
        out.put_slice(&raw[start..i]);
        out.put_slice(&[b'\\', code]);
        start = i + 1;
    }
    out.put_slice(&raw[start..]);
}

fn needs_escape(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b':' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        escape_into(raw, &mut out);
        assert_eq!(out.len(), escaped_len(raw));
        out
    }

    #[test]
    fn escapes_the_four_octets() {
        assert_eq!(esc(b"a:b\\c\nd\re"), b"a\\cb\\\\c\\nd\\re");
        assert_eq!(esc(b"plain"), b"plain");
        assert_eq!(esc(b""), b"");
    }

    #[test]
    fn unescape_inverts_escape() {
        let raw = b"x:\\\r\n::\\\\y";
        assert_eq!(unescape(&esc(raw), b'\n').unwrap(), raw);
    }

    #[test]
    fn undefined_escapes_are_errors() {
        assert_eq!(unescape(b"a\\tb", b'\n'), Err(b't'));
        assert_eq!(unescape(b"a\\", b':'), Err(b':'));
        assert_eq!(unescape(b"\\\\\\", b'\n'), Err(b'\n'));
        assert_eq!(unescape(b"\\\\\\c\\n\\r", b'\n').unwrap(), b"\\:\n\r");
        assert_eq!(unescape(b"", b'\n').unwrap(), b"");
    }
}
