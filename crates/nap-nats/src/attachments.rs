//! Saving the files a reply or a question carries (§5.2, §6.3, §7.1) to a
//! directory, safely: whatever names a remote agent chose, nothing lands
//! outside the directory, nothing is overwritten, no link is followed, and
//! the total is bounded.
//!
//! ```no_run
//! # fn run(attachments: &[nap_proto::Attachment]) -> Result<(), nap_nats::attachments::SaveError> {
//! use nap_nats::attachments::AttachmentSaver;
//!
//! let mut saver = AttachmentSaver::new("downloads")?;
//! for attachment in attachments {
//!     let path = saver.save(attachment)?;
//!     println!("saved {}", path.display());
//! }
//! # Ok(()) }
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};

use nap_proto::Attachment;
use nap_proto::file_name::{numbered, safe_file_name};

/// The default total of bytes one saver writes: 64 MiB.
pub const DEFAULT_BUDGET: u64 = 64 << 20;

/// How many ` (n)` alternatives are tried before giving up on a name.
const MAX_ALTERNATIVES: u32 = 1000;

/// Why an attachment was not saved. Nothing is ever partly written
/// without an error saying so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The directory could not be created or read.
    #[error("cannot use the directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The path exists and is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// Saving would pass the saver's total.
    #[error(
        "saving {size} more bytes would pass the {limit}-byte limit for attachments ({used} already saved)"
    )]
    OverBudget {
        /// The limit.
        limit: u64,
        /// Bytes already saved.
        used: u64,
        /// The size of the refused attachment.
        size: u64,
    },
    /// Every alternative name was taken.
    #[error("no free name for {0} in its directory")]
    NoFreeName(String),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Saves attachments under one directory.
///
/// - Names go through [`safe_file_name`]: one component, safe on every OS.
/// - Files are created new, never opened if they exist: a taken name
///   becomes `name (1).ext`, `name (2).ext`, … An existing entry of that
///   name, a symbolic link included, is never written through (creating
///   with "must not exist" refuses links too).
/// - The directory is resolved once, when the saver is made (a link the
///   user chose as the directory is the user's business); the saver only
///   writes its direct children.
/// - On Unix, files are created `0600` and a directory the saver creates
///   `0700`.
/// - The total written is bounded ([`DEFAULT_BUDGET`]); past it,
///   [`SaveError::OverBudget`], and the attachment is not written at all.
#[derive(Debug)]
pub struct AttachmentSaver {
    dir: PathBuf,
    limit: u64,
    used: u64,
}

impl AttachmentSaver {
    /// A saver into `dir`, created (owner-only) when missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<AttachmentSaver, SaveError> {
        let dir = dir.as_ref();
        let directory_error = |source| SaveError::Directory {
            path: dir.to_owned(),
            source,
        };
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(directory_error)?;
        }
        let resolved = dir.canonicalize().map_err(directory_error)?;
        if !resolved.is_dir() {
            return Err(SaveError::NotADirectory(dir.to_owned()));
        }
        Ok(AttachmentSaver {
            dir: resolved,
            limit: DEFAULT_BUDGET,
            used: 0,
        })
    }

    /// The same saver with another total in bytes.
    pub fn with_limit(mut self, limit: u64) -> AttachmentSaver {
        self.limit = limit;
        self
    }

    /// The directory files are saved in (resolved).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves one attachment and returns where.
    pub fn save(&mut self, attachment: &Attachment) -> Result<PathBuf, SaveError> {
        let size = attachment.content.len() as u64;
        if self.used.saturating_add(size) > self.limit {
            return Err(SaveError::OverBudget {
                limit: self.limit,
                used: self.used,
                size,
            });
        }
        let name = safe_file_name(&attachment.filename);
        for n in 0..=MAX_ALTERNATIVES {
            let candidate = if n == 0 {
                name.clone()
            } else {
                numbered(&name, n)
            };
            let path = self.dir.join(&candidate);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(mut file) => {
                    let written = file
                        .write_all(&attachment.content)
                        .and_then(|()| file.sync_all());
                    if let Err(source) = written {
                        // Do not leave a partial file behind.
                        let _ = std::fs::remove_file(&path);
                        return Err(SaveError::Write { path, source });
                    }
                    self.used += size;
                    return Ok(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(SaveError::Write { path, source }),
            }
        }
        Err(SaveError::NoFreeName(name))
    }
}
