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

#[test]
fn a_linked_directory_is_refused_and_a_dangling_link_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(matches!(
        AttachmentSaver::new(&link),
        Err(SaveError::DirectoryIsLink(p)) if p == link
    ));
    // A link that leads nowhere yet, planted under the attachment's name:
    // skipped, and nothing appears where it points.
    let target = dir.path().join("would-be-created");
    std::os::unix::fs::symlink(&target, real.join("x.txt")).unwrap();
    let mut saver = AttachmentSaver::new(&real).unwrap();
    let saved = saver.save(&file("x.txt", b"data")).unwrap();
    assert_eq!(saved.file_name().unwrap(), "x (1).txt");
    assert!(!target.exists());
    // A directory that exists keeps its mode; files are still 0600.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn save_all_checks_the_whole_set_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut saver = AttachmentSaver::new(dir.path()).unwrap().with_limit(10);
    let set = [file("a", b"123456"), file("b", b"12345")];
    let err = saver.save_all(&set).unwrap_err();
    assert!(
        matches!(
            err,
            SaveError::OverBudget {
                limit: 10,
                used: 0,
                size: 11
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let saved = saver.save_all(&set[..1]).unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saver.used(), 6);
}

mod reading {
    use nap_nats::attachments::{AttachmentReader, ReadError};

    struct Tree {
        _dir: tempfile::TempDir,
        root: std::path::PathBuf,
        outside: std::path::PathBuf,
    }

    fn tree() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("in.txt"), "inside").unwrap();
        let outside = dir.path().join("data2");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        Tree {
            _dir: dir,
            root,
            outside,
        }
    }

    #[test]
    fn files_under_a_root_are_read() {
        let t = tree();
        let mut reader = AttachmentReader::new([&t.root]).unwrap();
        let a = reader.read(t.root.join("in.txt")).unwrap();
        assert_eq!(
            (a.filename.as_str(), a.content.as_slice()),
            ("in.txt", &b"inside"[..])
        );
        // A link inside the root to a file inside it is fine, and sends the
        // link's name.
        std::os::unix::fs::symlink(t.root.join("in.txt"), t.root.join("alias.txt")).unwrap();
        let a = reader.read(t.root.join("alias.txt")).unwrap();
        assert_eq!(a.filename, "alias.txt");
        assert_eq!(reader.used(), 12);
    }

    #[test]
    fn links_and_dots_are_resolved_before_the_check() {
        let t = tree();
        let mut reader = AttachmentReader::new([&t.root]).unwrap();
        // A sibling whose name starts like the root is not under it.
        let err = reader.read(t.outside.join("secret")).unwrap_err();
        assert!(matches!(err, ReadError::OutsideRoots { .. }), "{err}");
        // `..` out of the root.
        let err = reader.read(t.root.join("../data2/secret")).unwrap_err();
        assert!(matches!(err, ReadError::OutsideRoots { .. }), "{err}");
        // A link inside the root to a file outside it.
        std::os::unix::fs::symlink(t.outside.join("secret"), t.root.join("leak")).unwrap();
        let err = reader.read(t.root.join("leak")).unwrap_err();
        assert!(
            matches!(&err, ReadError::OutsideRoots { resolved, .. } if resolved.ends_with("data2/secret")),
            "{err}"
        );
        // A linked directory inside the root leading outside.
        std::os::unix::fs::symlink(&t.outside, t.root.join("dirlink")).unwrap();
        let err = reader.read(t.root.join("dirlink/secret")).unwrap_err();
        assert!(matches!(err, ReadError::OutsideRoots { .. }), "{err}");
        // No roots: nothing is readable.
        let mut none = AttachmentReader::new(Vec::<std::path::PathBuf>::new()).unwrap();
        assert!(matches!(
            none.read(t.root.join("in.txt")),
            Err(ReadError::OutsideRoots { .. })
        ));
        assert_eq!(reader.used(), 0);
    }

    #[test]
    fn directories_missing_files_and_the_total_are_typed_errors() {
        let t = tree();
        let mut reader = AttachmentReader::new([&t.root]).unwrap().with_limit(8);
        std::fs::create_dir(t.root.join("sub")).unwrap();
        assert!(matches!(
            reader.read(t.root.join("sub")),
            Err(ReadError::NotAFile(_))
        ));
        assert!(matches!(
            reader.read(t.root.join("missing")),
            Err(ReadError::Resolve { .. })
        ));
        reader.read(t.root.join("in.txt")).unwrap();
        let err = reader.read(t.root.join("in.txt")).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::OverBudget {
                    limit: 8,
                    used: 6,
                    size: 6
                }
            ),
            "{err}"
        );
        assert!(matches!(
            AttachmentReader::new([t.root.join("nope")]),
            Err(ReadError::Root { .. })
        ));
    }
}
