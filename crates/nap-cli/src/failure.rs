//! Why a command failed, and the exit status that says so.

use std::fmt;

use nap_nats::Error;

/// The documented exit statuses (see `nap --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 1: the agent answered with an error signal (§9).
    Agent,
    /// 2: bad arguments, TARGET not found or ambiguous, a request refused
    /// locally, a query that cannot be answered.
    Usage,
    /// 3: no connection to NATS.
    Connection,
    /// 4: the exchange with the agent or the server failed.
    Stream,
    /// 5: the agent accepts only signed requests and this connection
    /// cannot sign (§13.9); nothing was sent.
    SignatureRequired,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Agent => 1,
            Status::Usage => 2,
            Status::Connection => 3,
            Status::Stream => 4,
            Status::SignatureRequired => 5,
            Status::Interrupted => 130,
        }
    }
}

/// A failed command: what to tell the user, and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// How the process exits.
    pub status: Status,
    /// What went wrong, printed on stderr.
    pub error: anyhow::Error,
    /// Already reported (for instance as a JSON line); print nothing more.
    pub quiet: bool,
}

impl Failure {
    /// A failure with this status.
    pub fn new(status: Status, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            status,
            error: error.into(),
            quiet: false,
        }
    }

    /// A usage failure (status 2) with a message.
    pub fn usage(message: impl fmt::Display) -> Self {
        Failure::new(Status::Usage, anyhow::anyhow!("{message}"))
    }

    /// An interruption (status 130).
    pub fn interrupted() -> Self {
        Failure {
            status: Status::Interrupted,
            error: anyhow::anyhow!("interrupted"),
            quiet: true,
        }
    }

    /// Prints the failure on stderr, unless it was already reported.
    pub fn report(&self) {
        if self.quiet {
            return;
        }
        match &self.error.downcast_ref::<Error>() {
            // §9.1: the code and the best description.
            // §13.9: one line naming the chapter and the remedy.
            Some(Error::SignatureRequired { subject, reason }) => {
                eprintln!(
                    "nap: {subject} accepts only signed requests (§13.9) and {reason}; connect \
                     as an NKEY user (--nkey FILE) or with a credentials file (--creds FILE) to \
                     sign (§13)"
                );
            }
            Some(Error::Remote(remote)) => {
                eprintln!(
                    "nap: the agent answered error {}: {}",
                    remote.code,
                    remote.message()
                );
            }
            _ => eprintln!("nap: {}", chain_text(&self.error)),
        }
    }
}

/// The error and its causes on one line, `outer: inner`, leaving out a
/// cause whose text the line already holds (many errors repeat their
/// source in their own message).
pub fn chain_text(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The exit status for an error of the caller library.
pub fn status_of(error: &Error) -> Status {
    match error {
        Error::Remote(_) => Status::Agent,
        Error::SignatureRequired { .. } => Status::SignatureRequired,
        Error::Refused(_)
        | Error::NotFound { .. }
        | Error::Identity(_)
        | Error::Config { .. }
        | Error::Incompatible { .. }
        | Error::QueryNotAnswered { .. } => Status::Usage,
        _ => Status::Stream,
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::new(status_of(&error), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn library_errors_map_to_documented_statuses() {
        let remote = nap_proto::RemoteError::from_parts(Some("409"), Some("busy"), b"");
        assert_eq!(
            Failure::from(Error::Remote(Box::new(remote))).status.code(),
            1
        );
        assert_eq!(
            Failure::from(Error::NotFound { filter: "x".into() })
                .status
                .code(),
            2
        );
        assert_eq!(
            Failure::from(Error::InactivityTimeout {
                idle: Duration::from_secs(1)
            })
            .status
            .code(),
            4
        );
        assert_eq!(
            Failure::from(Error::SignatureRequired {
                subject: "agents.prompt.a.b.c".into(),
                reason: nap_nats::identity::CannotSign::NoKey,
            })
            .status
            .code(),
            5
        );
        assert_eq!(Failure::interrupted().status.code(), 130);
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let refused = Error::Refused(nap_proto::RequestError::AttachmentsNotAccepted { count: 1 });
        let line = chain_text(&anyhow::Error::new(refused));
        let inner = "1 attachment(s) sent, but this agent declares attachments_ok=false";
        assert_eq!(line.matches(inner).count(), 1, "{line}");
        let wrapped =
            anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(chain_text(&wrapped), "cannot write: disk full");
    }
}
