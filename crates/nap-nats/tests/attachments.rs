//! Saving attachments: names stay in the directory, nothing is overwritten
//! or written through a link, files are owner-only, the total is bounded.
#![allow(clippy::unwrap_used)]

use nap_nats::attachments::{AttachmentSaver, SaveError};
use nap_proto::Attachment;

fn file(name: &str, content: &[u8]) -> Attachment {
    Attachment::new(name, content.to_vec())
}

#[test]
fn hostile_names_land_inside_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("saved");
    let mut saver = AttachmentSaver::new(&target).unwrap();
    let first = saver.save(&file("../../escape.txt", b"one")).unwrap();
    let second = saver.save(&file("escape.txt", b"two")).unwrap();
    assert_eq!(first.file_name().unwrap(), "escape.txt");
    assert_eq!(second.file_name().unwrap(), "escape (1).txt");
    assert!(first.starts_with(saver.dir()) && second.starts_with(saver.dir()));
    assert!(!dir.path().join("escape.txt").exists());
    assert_eq!(std::fs::read(&first).unwrap(), b"one");
    // A link under the next name is skipped, not followed.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, saver.dir().join("escape (2).txt")).unwrap();
    let third = saver.save(&file("escape.txt", b"three")).unwrap();
    assert_eq!(third.file_name().unwrap(), "escape (3).txt");
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&third), 0o600);
    assert_eq!(mode(saver.dir()), 0o700);
}

#[test]
fn the_total_is_bounded_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut saver = AttachmentSaver::new(dir.path()).unwrap().with_limit(10);
    saver.save(&file("a", b"123456")).unwrap();
    let err = saver.save(&file("b", b"12345")).unwrap_err();
    assert!(
        matches!(
            err,
            SaveError::OverBudget {
                limit: 10,
                used: 6,
                size: 5
            }
        ),
        "{err}"
    );
    assert!(!dir.path().join("b").exists(), "nothing partly written");
    saver.save(&file("c", b"1234")).unwrap();
}

#[test]
fn a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain");
    std::fs::write(&path, "x").unwrap();
    assert!(matches!(
        AttachmentSaver::new(&path),
        Err(SaveError::NotADirectory(_))
    ));
}
