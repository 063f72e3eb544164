//! Where warrenctl finds the broker and its credentials: flags, then `WARRENCTL_*`
//! variables (both handled by clap), then a config file, then RabbitMQ's defaults
//! (`http://localhost:15672`, guest/guest).
//!
//! The config file is `--config FILE` (or `WARRENCTL_CONFIG`), else
//! `$XDG_CONFIG_HOME/warrenctl.toml` or `~/.config/warrenctl.toml` when present. It is a
//! TOML document of string keys `url`, `user`, `password`; only that subset of TOML is
//! read (a full TOML parser would be a large dependency for three strings), and anything
//! else is refused rather than ignored.

use std::path::{Path, PathBuf};

use crate::error::{Failure, EX_CONFIG};

pub const DEFAULT_URL: &str = "http://localhost:15672";

/// Settings read from a config file; `None` where the file says nothing.
#[derive(Debug, Default, PartialEq)]
pub struct FileConfig {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// The config file to read: the one named, or the default one if it exists.
pub fn locate(named: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = named {
        return Some(p.to_path_buf());
    }
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = dir.join("warrenctl.toml");
    p.is_file().then_some(p)
}

pub fn load(path: &Path) -> Result<FileConfig, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::new(
            EX_CONFIG,
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    parse(&text)
        .map_err(|e| Failure::new(EX_CONFIG, format!("config file {}: {e}", path.display())))
}

fn parse(text: &str) -> Result<FileConfig, String> {
    let mut cfg = FileConfig::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |m: &str| format!("line {}: {m}", i + 1);
        let (key, rest) = line
            .split_once('=')
            .ok_or_else(|| err("expected `key = \"value\"`"))?;
        let value = string_value(rest.trim()).ok_or_else(|| err("expected a quoted string"))?;
        let slot = match key.trim() {
            "url" => &mut cfg.url,
            "user" => &mut cfg.user,
            "password" => &mut cfg.password,
            other => return Err(err(&format!("unknown key `{other}` (url, user, password)"))),
        };
        *slot = Some(value);
    }
    Ok(cfg)
}

/// A TOML basic ("...", with escapes) or literal ('...') string, optionally followed by
/// a comment.
fn string_value(s: &str) -> Option<String> {
    let mut chars = s.chars();
    let quote = chars.next()?;
    let mut out = String::new();
    match quote {
        '\'' => {
            for c in chars.by_ref() {
                if c == '\'' {
                    return trailing_ok(chars.as_str()).then_some(out);
                }
                out.push(c);
            }
            None
        }
        '"' => {
            while let Some(c) = chars.next() {
                match c {
                    '"' => return trailing_ok(chars.as_str()).then_some(out),
                    '\\' => out.push(match chars.next()? {
                        'n' => '\n',
                        't' => '\t',
                        '\\' => '\\',
                        '"' => '"',
                        _ => return None,
                    }),
                    c => out.push(c),
                }
            }
            None
        }
        _ => None,
    }
}

fn trailing_ok(rest: &str) -> bool {
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_keys_with_comments_and_escapes() {
        let cfg =
            parse("# broker\nurl = \"http://h:1\"  # here\nuser='ops'\n\npassword = \"a\\\"b\"\n")
                .unwrap();
        assert_eq!(
            cfg,
            FileConfig {
                url: Some("http://h:1".into()),
                user: Some("ops".into()),
                password: Some("a\"b".into()),
            }
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert!(parse("vhost = \"/\"").unwrap_err().contains("unknown key"));
        assert!(parse("url = http://h").unwrap_err().contains("quoted"));
        assert!(parse("url = \"x\" y").is_err());
        assert!(parse("[section]").is_err());
    }
}
