//! File names for attachments (§5.2 names a file; it says nothing about
//! where it may go). Two rules, both pure:
//!
//! - [`check_file_name`], the **host** rule: an agent receiving a prompt
//!   refuses, with `400` (§9.2), an attachment whose `filename` cannot be a
//!   single file name on any OS: empty, `.` or `..`, a path separator
//!   (`/` or `\`), or a control character (NUL included). nap *rejects*
//!   rather than rewrites here, so that the handler never sees a name other
//!   than the one sent and a buggy or hostile caller learns at once. Names
//!   that are one component but awkward somewhere (`CON`, a trailing dot,
//!   300 bytes) are accepted: they are legal on the host's own OS, and
//!   whoever writes them to a disk sanitises them with the second rule.
//! - [`safe_file_name`], the **saving** rule: whatever the sender wrote, the
//!   name a file is given on disk: one component, safe on Linux, macOS and
//!   Windows alike. The TypeScript SDK of `synadia-ai/synadia-agents`
//!   (`saveAttachments`; its Python SDK says it behaves the same) also
//!   keeps the last component and sanitises it rather than refusing, on
//!   the receiving side; nap's rule follows it in substance. Differences:
//!   nap keeps a leading dot (`.env`), cuts at 255 bytes rather than 200,
//!   falls back to `attachment` rather than `attachment-<n>`, and numbers
//!   a taken name from ` (1)` rather than ` (2)`.

/// The name used when nothing usable is left of the one sent.
pub const FALLBACK_NAME: &str = "attachment";

/// The longest name kept, in bytes (the common file-system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Names Windows reserves for devices, with or without an extension.
const RESERVED: [&str; 30] = [
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    "COM1",
    "COM2",
    "COM3",
    "COM4",
    "COM5",
    "COM6",
    "COM7",
    "COM8",
    "COM9",
    "COM\u{b9}",
    "COM\u{b2}",
    "COM\u{b3}",
    "LPT1",
    "LPT2",
    "LPT3",
    "LPT4",
    "LPT5",
    "LPT6",
    "LPT7",
    "LPT8",
    "LPT9",
    "LPT\u{b9}",
    "LPT\u{b2}",
    "LPT\u{b3}",
];

/// Why a received attachment's `filename` is refused by a host
/// ([`check_file_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileNameError {
    /// The name is empty.
    #[error("is empty")]
    Empty,
    /// The name is `.` or `..`.
    #[error("is {0:?}, not a file name")]
    DotName(String),
    /// The name contains a path separator.
    #[error("contains the path separator {found:?} at byte {offset}")]
    Separator {
        /// `/` or `\`.
        found: char,
        /// Its byte offset.
        offset: usize,
    },
    /// The name contains a control character (NUL included).
    #[error("contains the control character U+{:04X} at byte {offset}", u32::from(*found))]
    Control {
        /// The character.
        found: char,
        /// Its byte offset.
        offset: usize,
    },
}

/// The host rule (see the [module](self) docs): `Ok` when `name` is one file
/// name that cannot leave a directory nor be cut short by a C library:
/// not empty, not `.`/`..`, no `/` or `\`, no control character.
///
/// ```
/// use nap_proto::{FileNameError, check_file_name};
/// assert!(check_file_name("report.pdf").is_ok());
/// assert!(check_file_name("CON").is_ok(), "awkward, but one component");
/// assert_eq!(
///     check_file_name("../x"),
///     Err(FileNameError::Separator { found: '/', offset: 2 })
/// );
/// ```
pub fn check_file_name(name: &str) -> Result<(), FileNameError> {
    if name.is_empty() {
        return Err(FileNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(FileNameError::DotName(name.to_owned()));
    }
    for (offset, found) in name.char_indices() {
        if found == '/' || found == '\\' {
            return Err(FileNameError::Separator { found, offset });
        }
        if found.is_control() {
            return Err(FileNameError::Control { found, offset });
        }
    }
    Ok(())
}

/// Characters that change the direction text is shown in: they let a shown
/// name lie about its extension (`evil\u{202e}txt.exe`).
fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `name` is a Windows device name, alone or before a dot, in any
/// case, spaces before the dot ignored (`nul.txt`, `CON .tar.gz`).
fn is_reserved(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches(' ');
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// A single, safe file-name component for an attachment's `filename`:
///
/// - only the last component survives (`/` and `\` both separate), so a
///   name cannot leave the directory it is saved in;
/// - control characters (NUL included) and direction marks are dropped, and the characters
///   Windows forbids (`< > : " | ? *`) become `_`;
/// - leading spaces and trailing dots and spaces go (Windows drops the
///   latter silently), `.` and `..` are refused, Windows device names
///   (`CON`, `nul.txt`, `COM1`, `CONIN$`…) get a leading `_`;
/// - the result is at most [`MAX_NAME_BYTES`] bytes, keeping the
///   extension when it can;
/// - when nothing is left, [`FALLBACK_NAME`].
///
/// ```
/// use nap_proto::safe_file_name;
/// assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
/// assert_eq!(safe_file_name("C:\\Users\\x\\report.pdf"), "report.pdf");
/// assert_eq!(safe_file_name("nul.txt"), "_nul.txt");
/// assert_eq!(safe_file_name(".."), "attachment");
/// ```
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_direction_mark(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            other => other,
        })
        .collect();
    let trimmed = cleaned.trim_end_matches(['.', ' ']).trim_start_matches(' ');
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        return FALLBACK_NAME.to_owned();
    }
    let mut safe = trimmed.to_owned();
    if safe.len() > MAX_NAME_BYTES {
        safe = shorten(&safe);
    }
    // After shortening, which may leave a device name or a trailing dot.
    if is_reserved(&safe) {
        safe = format!("_{safe}");
        if safe.len() > MAX_NAME_BYTES {
            safe = shorten(&safe);
        }
    }
    safe
}

/// Cuts `name` to [`MAX_NAME_BYTES`] on a character boundary, keeping a
/// short extension.
fn shorten(name: &str) -> String {
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16 && e.len() < name.len());
    let ext = ext.unwrap_or("");
    let mut budget = MAX_NAME_BYTES - ext.len();
    while !name.is_char_boundary(budget) {
        budget -= 1;
    }
    // The cut may land after a dot or a space; the name must not end on one.
    let stem = name[..budget].trim_end_matches(['.', ' ']);
    format!("{stem}{ext}")
}

/// `name` with ` (n)` before its extension: the `n`th alternative when a
/// file of that name already exists.
pub fn numbered(name: &str, n: u32) -> String {
    let suffix = format!(" ({n})");
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    let mut stem = stem.to_owned();
    while stem.len() + suffix.len() + ext.len() > MAX_NAME_BYTES && !stem.is_empty() {
        stem.pop();
    }
    format!("{stem}{suffix}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_one_safe_component() {
        let long_ascii = "a".repeat(300);
        for (sent, kept) in [
            ("../x", "x"),
            ("a/b", "b"),
            ("a\\b", "b"),
            ("/etc/passwd", "passwd"),
            ("C:\\Windows\\win.ini", "win.ini"),
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("con.txt", "_con.txt"),
            ("CON .tar.gz", "_CON .tar.gz"),
            ("com1", "_com1"),
            ("LPT\u{b9}", "_LPT\u{b9}"),
            ("conin$", "_conin$"),
            ("console.log", "console.log"),
            ("x\0y", "xy"),
            ("", "attachment"),
            (".", "attachment"),
            ("..", "attachment"),
            ("...", "attachment"),
            ("dir/", "attachment"),
            ("dir/..", "attachment"),
            ("report. . ", "report"),
            ("  lead", "lead"),
            ("a<b>c:d\"e|f?g*h", "a_b_c_d_e_f_g_h"),
            ("über.txt", "über.txt"),
            ("日本語のファイル.txt", "日本語のファイル.txt"),
            ("evil\u{202e}txt.exe", "eviltxt.exe"),
            ("tab\there", "tabhere"),
            ("bell\u{7}\u{9b}", "bell"),
            ("config.json", "config.json"),
            (".env", ".env"),
        ] {
            assert_eq!(safe_file_name(sent), kept, "{sent:?}");
            assert!(check_file_name(&safe_file_name(sent)).is_ok(), "{sent:?}");
        }
        for long in [
            format!("{}.pdf", "é".repeat(300)),
            format!("{long_ascii}.pdf"),
            format!("{}. .pdf", "b".repeat(251)),
        ] {
            let kept = safe_file_name(&long);
            assert!(
                kept.len() <= MAX_NAME_BYTES && kept.ends_with(".pdf"),
                "{kept}"
            );
            assert!(
                !kept.trim_end_matches(".pdf").ends_with(['.', ' ']),
                "{kept}"
            );
        }
        let kept = safe_file_name(&long_ascii);
        assert_eq!(kept, "a".repeat(MAX_NAME_BYTES));
        // A device name left by the cut still gets its prefix.
        let kept = safe_file_name(&format!("CON{}.{}", " ".repeat(260), "x".repeat(20)));
        assert!(
            kept.starts_with("_CON") && kept.len() <= MAX_NAME_BYTES,
            "{kept:?}"
        );
    }

    #[test]
    fn the_host_rule_refuses_what_cannot_be_one_name() {
        for (sent, error) in [
            ("", FileNameError::Empty),
            (".", FileNameError::DotName(".".into())),
            ("..", FileNameError::DotName("..".into())),
            (
                "../x",
                FileNameError::Separator {
                    found: '/',
                    offset: 2,
                },
            ),
            (
                "a/b",
                FileNameError::Separator {
                    found: '/',
                    offset: 1,
                },
            ),
            (
                "a\\b",
                FileNameError::Separator {
                    found: '\\',
                    offset: 1,
                },
            ),
            (
                "x\0y",
                FileNameError::Control {
                    found: '\0',
                    offset: 1,
                },
            ),
            (
                "line\nbreak",
                FileNameError::Control {
                    found: '\n',
                    offset: 4,
                },
            ),
        ] {
            assert_eq!(check_file_name(sent), Err(error), "{sent:?}");
        }
        // One component, even if awkward on some OS: the saver's business.
        for ok in [
            "CON",
            "nul.txt",
            "a.",
            "über.txt",
            ".env",
            "...x",
            &"n".repeat(300),
        ] {
            assert_eq!(check_file_name(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn alternatives_keep_the_extension() {
        assert_eq!(numbered("a.txt", 1), "a (1).txt");
        assert_eq!(numbered("a", 2), "a (2)");
        assert_eq!(numbered(".env", 3), ".env (3)");
        assert!(numbered(&"x".repeat(255), 12).len() <= MAX_NAME_BYTES);
    }
}
