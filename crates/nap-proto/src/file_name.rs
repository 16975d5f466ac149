//! File names for attachments that land on a disk (§5.2 names a file; it
//! says nothing about where it may go): one component, safe on Linux,
//! macOS and Windows alike, whatever the sender wrote.

/// The name used when nothing usable is left of the one sent.
pub const FALLBACK_NAME: &str = "attachment";

/// The longest name kept, in bytes (the common file-system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Names Windows reserves for devices, with or without an extension.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A single, safe file-name component for an attachment's `filename`:
///
/// - only the last component survives (`/` and `\` both separate), so a
///   name cannot leave the directory it is saved in;
/// - control characters (NUL included) are dropped, and the characters
///   Windows forbids (`< > : " | ? *`) become `_`;
/// - trailing dots and spaces go (Windows drops them silently), `.` and
///   `..` are refused, Windows device names (`CON`, `nul.txt`, `COM1`…)
///   get a leading `_`;
/// - the result is at most [`MAX_NAME_BYTES`] bytes, keeping the
///   extension when it can;
/// - when nothing is left, [`FALLBACK_NAME`].
///
/// ```
/// use nap_proto::file_name::safe_file_name;
/// assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
/// assert_eq!(safe_file_name("C:\\Users\\x\\report.pdf"), "report.pdf");
/// assert_eq!(safe_file_name("nul.txt"), "_nul.txt");
/// assert_eq!(safe_file_name(".."), "attachment");
/// ```
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            other => other,
        })
        .collect();
    let trimmed = cleaned.trim_end_matches(['.', ' ']).trim_start_matches(' ');
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        return FALLBACK_NAME.to_owned();
    }
    let stem = trimmed.split('.').next().unwrap_or_default();
    let mut safe = if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        format!("_{trimmed}")
    } else {
        trimmed.to_owned()
    };
    if safe.len() > MAX_NAME_BYTES {
        safe = shorten(&safe);
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
    format!("{}{ext}", &name[..budget])
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
        for (sent, kept) in [
            ("../x", "x"),
            ("a/b", "b"),
            ("a\\b", "b"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("com1", "_com1"),
            ("x\0y", "xy"),
            ("", "attachment"),
            (".", "attachment"),
            ("..", "attachment"),
            ("dir/", "attachment"),
            ("report. . ", "report"),
            ("a<b>c:d\"e|f?g*h", "a_b_c_d_e_f_g_h"),
            ("über.txt", "über.txt"),
            ("tab\there", "tabhere"),
            ("config.json", "config.json"),
        ] {
            assert_eq!(safe_file_name(sent), kept, "{sent:?}");
        }
        let long = format!("{}.pdf", "é".repeat(300));
        let kept = safe_file_name(&long);
        assert!(
            kept.len() <= MAX_NAME_BYTES && kept.ends_with(".pdf"),
            "{kept}"
        );
    }

    #[test]
    fn alternatives_keep_the_extension() {
        assert_eq!(numbered("a.txt", 1), "a (1).txt");
        assert_eq!(numbered("a", 2), "a (2)");
        assert_eq!(numbered(".env", 3), ".env (3)");
        assert!(numbered(&"x".repeat(255), 12).len() <= MAX_NAME_BYTES);
    }
}
