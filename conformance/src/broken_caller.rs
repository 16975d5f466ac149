//! Deliberately broken callers: each follows the caller contract (see
//! [`crate::caller`]) but breaks exactly one rule, so caller mode can be
//! shown to catch it. [`CallerFlaw::None`] is the same caller without a
//! flaw, which must fail no case (it does not implement §13, so the CID
//! cases are skipped).
//!
//! They run as `nap-conformance broken-caller --flaw NAME --server URL
//! --subject S --timeout SECS --answer A PROMPT`, straight on async-nats:
//! publish the prompt with a reply inbox, print response text, answer
//! queries, exit 0 on the terminator, 1 on an error signal (code and
//! message on stderr), 3 on an inactivity timeout.

use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use nap_proto::{Chunk, Received, StatusToken};
use std::io::Write as _;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// The one rule a broken caller breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerFlaw {
    /// No flaw: the compliant baseline.
    None,
    /// Its inactivity timer is reset by acks only, not by every message
    /// (§6.6: "since the last observed chunk").
    AckOnlyTimer,
    /// Its inactivity timer starts at the first message, so an agent that
    /// never answers hangs it (§6.6).
    NoTimerBeforeFirstMessage,
    /// Ignores the timeout it is given and waits its own
    /// [`FIXED_TIMEOUT`] (§6.6).
    FixedTimeout,
    /// Replies to every query a second time once the stream has ended
    /// (§7.2: exactly one reply).
    AnswersAgainAfterEnd,
}

/// The timeout [`CallerFlaw::FixedTimeout`] applies whatever it is told.
pub const FIXED_TIMEOUT: Duration = Duration::from_secs(10);

impl CallerFlaw {
    /// Every flaw, the baseline first.
    pub const ALL: [CallerFlaw; 5] = [
        CallerFlaw::None,
        CallerFlaw::AckOnlyTimer,
        CallerFlaw::NoTimerBeforeFirstMessage,
        CallerFlaw::FixedTimeout,
        CallerFlaw::AnswersAgainAfterEnd,
    ];

    /// The cases caller mode must fail on this caller (at its default
    /// 3 s timeout), and no others.
    pub fn expected_failures(self) -> &'static [&'static str] {
        match self {
            CallerFlaw::None => &[],
            CallerFlaw::AckOnlyTimer => &["CALL-011"],
            CallerFlaw::NoTimerBeforeFirstMessage => &["CALL-012"],
            CallerFlaw::FixedTimeout => &["CALL-013"],
            CallerFlaw::AnswersAgainAfterEnd => &["CALL-014"],
        }
    }

    /// The flaw's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CallerFlaw::None => "compliant",
            CallerFlaw::AckOnlyTimer => "ack-only-timer",
            CallerFlaw::NoTimerBeforeFirstMessage => "no-timer-before-first-message",
            CallerFlaw::FixedTimeout => "fixed-timeout",
            CallerFlaw::AnswersAgainAfterEnd => "answers-again-after-end",
        }
    }

    /// The flaw named `name`.
    pub fn by_name(name: &str) -> Option<CallerFlaw> {
        CallerFlaw::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The NATS URL.
    pub server: String,
    /// The prompt subject.
    pub subject: String,
    /// The inactivity timeout it is told to apply.
    pub timeout: Duration,
    /// The reply to every query.
    pub answer: String,
    /// The prompt.
    pub prompt: String,
}

/// How a call ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The terminator came (exit 0).
    Complete,
    /// The agent sent an error signal (exit 1).
    Remote,
    /// No message within the timeout (exit 3).
    TimedOut,
}

impl CallEnd {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            CallEnd::Complete => 0,
            CallEnd::Remote => 1,
            CallEnd::TimedOut => 3,
        }
    }
}

/// A message's headers as `(name, value)` pairs, for [`Received`].
fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_owned()))
        })
        .collect()
}

/// Makes `call` with `flaw`: response text to stdout, errors to stderr.
pub async fn call(flaw: CallerFlaw, call: &Call) -> Result<CallEnd> {
    let client = async_nats::connect(&call.server)
        .await
        .map_err(|source| Error::Connect {
            url: call.server.clone(),
            source,
        })?;
    let timeout = if flaw == CallerFlaw::FixedTimeout {
        FIXED_TIMEOUT
    } else {
        call.timeout
    };
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| Error::nats("subscribe", e))?;
    client
        .publish_with_reply(
            call.subject.clone(),
            inbox,
            call.prompt.clone().into_bytes().into(),
        )
        .await
        .map_err(|e| Error::nats("publish", e))?;
    client.flush().await.map_err(|e| Error::nats("flush", e))?;
    // §6.6: the clock starts at publication (the flaw: at the first message).
    let mut deadline =
        (flaw != CallerFlaw::NoTimerBeforeFirstMessage).then(|| Instant::now() + timeout);
    let mut queries = Vec::new();
    let mut stdout = std::io::stdout();
    let end = loop {
        let next = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, replies.next()).await.ok(),
                None => Some(replies.next().await),
            }
        };
        let Some(message) = next.await else {
            eprintln!(
                "timed out: no message for {:.1} s (§6.6)",
                timeout.as_secs_f64()
            );
            break CallEnd::TimedOut;
        };
        let Some(message) = message else {
            eprintln!("the reply subscription closed");
            break CallEnd::TimedOut;
        };
        let headers = message.headers.as_ref().map(pairs);
        let received = match &headers {
            Some(h) => Received::with_headers(h, &message.payload),
            None => Received::body(&message.payload),
        };
        if received.is_terminator() {
            break CallEnd::Complete;
        }
        if let Some(error) = received.error() {
            eprintln!("error {}: {}", error.code, error.message());
            break CallEnd::Remote;
        }
        let chunk = Chunk::decode(&message.payload).ok();
        let is_ack = matches!(chunk, Some(Chunk::Status(StatusToken::Ack)));
        if flaw != CallerFlaw::AckOnlyTimer || is_ack || deadline.is_none() {
            deadline = Some(Instant::now() + timeout);
        }
        match chunk {
            Some(Chunk::Response(data)) => {
                let _ = stdout.write_all(data.text().as_bytes());
                let _ = stdout.flush();
            }
            Some(Chunk::Query(query)) => {
                client
                    .publish(
                        query.reply_subject.clone(),
                        call.answer.clone().into_bytes().into(),
                    )
                    .await
                    .map_err(|e| Error::nats("publish", e))?;
                queries.push(query.reply_subject);
            }
            // §6.2, §6.4: unknown types and status values are ignored,
            // and so is what does not decode.
            _ => {}
        }
    };
    if end == CallEnd::Complete && flaw == CallerFlaw::AnswersAgainAfterEnd {
        for subject in queries {
            client
                .publish(subject, call.answer.clone().into_bytes().into())
                .await
                .map_err(|e| Error::nats("publish", e))?;
        }
    }
    if end == CallEnd::Complete {
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
    }
    client.flush().await.map_err(|e| Error::nats("flush", e))?;
    Ok(end)
}
