//! Attachments and the local disk, safely (§5.2, §6.3, §7.1). Blocking
//! `std::fs` I/O: call it from `spawn_blocking` in async code when the files
//! are large.
//!
//! - [`AttachmentSaver`] saves the files a reply or a question carries to a
//!   directory: whatever names a remote agent chose, nothing lands outside
//!   the directory, nothing is overwritten, no link is followed, and the
//!   total is bounded.
//! - [`AttachmentReader`] reads files to send, only from under the
//!   directories it was given (links resolved before the check), with a
//!   bounded total.
//!
//! The name rules themselves are pure and live in [`nap_proto::file_name`].
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
use nap_proto::{numbered_file_name as numbered, safe_file_name};

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
    /// The directory given is itself a symbolic link.
    #[error("{0} is a symbolic link; give the directory it points to")]
    DirectoryIsLink(PathBuf),
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
/// - The directory given must not itself be a symbolic link
///   ([`SaveError::DirectoryIsLink`]); links among its parents (`/tmp` on
///   macOS) are resolved once, when the saver is made. The saver only
///   writes direct children of the resolved directory.
/// - No `O_NOFOLLOW` is needed: a file is opened with `O_CREAT | O_EXCL`
///   (`create_new`), which fails on any existing entry, a dangling link
///   included, and never follows one.
/// - On Unix, files are created `0600` and a directory the saver creates
///   `0700`.
/// - The total written by one saver is bounded ([`DEFAULT_BUDGET`],
///   [`AttachmentSaver::with_limit`]); past it, [`SaveError::OverBudget`],
///   and the attachment is not written at all: nothing is truncated.
///   [`AttachmentSaver::save_all`] checks the whole set before writing any.
/// - A failed write removes the file it had created.
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
        match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(SaveError::DirectoryIsLink(dir.to_owned()));
            }
            Ok(meta) if !meta.is_dir() => return Err(SaveError::NotADirectory(dir.to_owned())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt as _;
                    builder.mode(0o700);
                }
                builder.create(dir).map_err(directory_error)?;
            }
            Err(e) => return Err(directory_error(e)),
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

    /// Bytes saved so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Saves every attachment, in order, and returns where. The total is
    /// checked first: when the set does not fit what is left of the limit,
    /// [`SaveError::OverBudget`] (with `size` the set's total) and nothing
    /// is written. An I/O error part way leaves the files saved before it.
    pub fn save_all(&mut self, attachments: &[Attachment]) -> Result<Vec<PathBuf>, SaveError> {
        let size = attachments
            .iter()
            .fold(0u64, |sum, a| sum.saturating_add(a.content.len() as u64));
        if self.used.saturating_add(size) > self.limit {
            return Err(SaveError::OverBudget {
                limit: self.limit,
                used: self.used,
                size,
            });
        }
        attachments.iter().map(|a| self.save(a)).collect()
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

/// The default total of bytes one reader reads: 64 MiB.
pub const DEFAULT_READ_BUDGET: u64 = 64 << 20;

/// Why a file was not read to be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A configured root could not be resolved.
    #[error("cannot use {path} as a root for attachments: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not exist or cannot be resolved.
    #[error("cannot resolve {path}: {source}")]
    Resolve {
        /// The path as given.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file, links resolved, is under none of the roots.
    #[error(
        "{path} (resolved to {resolved}) is outside the directories attachments may be read from"
    )]
    OutsideRoots {
        /// The path as given.
        path: PathBuf,
        /// Where it leads.
        resolved: PathBuf,
    },
    /// The path is not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// Reading would pass the reader's total.
    #[error(
        "reading {size} more bytes would pass the {limit}-byte limit for attachments ({used} already read)"
    )]
    OverBudget {
        /// The limit.
        limit: u64,
        /// Bytes already read.
        used: u64,
        /// The size of the refused file (at least; it may have grown).
        size: u64,
    },
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads files to send as attachments, only from under configured roots.
///
/// - Roots are resolved when the reader is made; a path is resolved
///   (`canonicalize`: every link followed, `..` removed) **before** it is
///   compared with them, so neither a link nor `..` leads outside. The
///   comparison is by whole components (`/data2` is not under `/data`).
/// - Only regular files are read; the file is opened by its resolved path,
///   and on Unix with `O_NOFOLLOW`, so a link swapped in after the check is
///   refused rather than followed.
/// - The attachment's name is the last component of the path as given,
///   through [`safe_file_name`] (a link named `report.pdf` sends
///   `report.pdf`).
/// - The total read is bounded ([`DEFAULT_READ_BUDGET`],
///   [`AttachmentReader::with_limit`]): past it [`ReadError::OverBudget`],
///   never a truncated file.
#[derive(Debug)]
pub struct AttachmentReader {
    roots: Vec<PathBuf>,
    limit: u64,
    used: u64,
}

impl AttachmentReader {
    /// A reader allowed under `roots` (each resolved now; a missing root is
    /// an error). With no roots, every read is refused.
    pub fn new<I, P>(roots: I) -> Result<AttachmentReader, ReadError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let roots = roots
            .into_iter()
            .map(|root| {
                let root = root.as_ref();
                root.canonicalize().map_err(|source| ReadError::Root {
                    path: root.to_owned(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AttachmentReader {
            roots,
            limit: DEFAULT_READ_BUDGET,
            used: 0,
        })
    }

    /// The same reader with another total in bytes.
    pub fn with_limit(mut self, limit: u64) -> AttachmentReader {
        self.limit = limit;
        self
    }

    /// The resolved roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Bytes read so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Where `path` leads, when that is under a root; the checks of
    /// [`AttachmentReader::read`] without reading.
    pub fn resolve(&self, path: impl AsRef<Path>) -> Result<PathBuf, ReadError> {
        let path = path.as_ref();
        let resolved = path.canonicalize().map_err(|source| ReadError::Resolve {
            path: path.to_owned(),
            source,
        })?;
        if !self.roots.iter().any(|root| resolved.starts_with(root)) {
            return Err(ReadError::OutsideRoots {
                path: path.to_owned(),
                resolved,
            });
        }
        Ok(resolved)
    }

    /// Reads `path` into an attachment.
    pub fn read(&mut self, path: impl AsRef<Path>) -> Result<Attachment, ReadError> {
        use std::io::Read as _;
        let path = path.as_ref();
        let resolved = self.resolve(path)?;
        let read_error = |source| ReadError::Read {
            path: resolved.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(&resolved).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(ReadError::NotAFile(path.to_owned()));
        }
        let left = self.limit.saturating_sub(self.used);
        if meta.len() > left {
            return Err(ReadError::OverBudget {
                limit: self.limit,
                used: self.used,
                size: meta.len(),
            });
        }
        // The file may grow while read: read at most one byte past what is
        // left, and refuse rather than cut.
        let mut content = Vec::new();
        file.take(left.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(read_error)?;
        let size = content.len() as u64;
        if size > left {
            return Err(ReadError::OverBudget {
                limit: self.limit,
                used: self.used,
                size,
            });
        }
        self.used += size;
        let name = path
            .file_name()
            .or_else(|| resolved.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Attachment::new(safe_file_name(&name), content))
    }
}
