//! A run's state, derived from its last records (durable D11).

use std::fmt;

use super::headers::{LastRecord, RecordKind};
use crate::error::RemoteError;

/// Where a run stands (D11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Stored, no attempt has written anything yet.
    Queued,
    /// Attempt `attempt` is writing (or died, and its claim has not lapsed
    /// yet: readers cannot tell, D11).
    Running {
        /// The attempt of the last record.
        attempt: u32,
    },
    /// The reply is complete (§6.5).
    Complete {
        /// The attempt that answered.
        attempt: u32,
    },
    /// The agent answered with an error (§9.3): a final answer, not
    /// retried (D9.5).
    Failed {
        /// The attempt that answered.
        attempt: u32,
        /// The error.
        error: RemoteError,
    },
    /// Every attempt failed to answer (D9.7).
    Exhausted {
        /// The error stored in the `exhausted` record.
        error: RemoteError,
    },
    /// The run was cancelled (D13).
    Cancelled {
        /// The attempt it interrupted, `0` when it was queued.
        attempt: u32,
    },
    /// The prompt record has expired; reply records remain (D14).
    Expired,
}

impl RunState {
    /// The state of a run from the sequence of its prompt record (`None`:
    /// absent) and the last record on its reply subject (D11). `None` when
    /// neither exists: the run is unknown.
    ///
    /// ```
    /// use nap_proto::durable::RunState;
    ///
    /// assert_eq!(RunState::derive(Some(41), None), Some(RunState::Queued));
    /// assert_eq!(RunState::derive(None, None), None);
    /// ```
    pub fn derive(prompt_seq: Option<u64>, last: Option<&LastRecord>) -> Option<RunState> {
        let Some(prompt_seq) = prompt_seq else {
            return last.map(|_| RunState::Expired);
        };
        // Records of another generation (D14) say nothing of this one.
        let Some(meta) = last.and_then(|l| l.of_generation(prompt_seq)) else {
            return Some(RunState::Queued);
        };
        let attempt = meta.attempt;
        let error = || {
            last.and_then(|l| l.error.clone())
                .unwrap_or_else(|| RemoteError::from_parts(None, None, b""))
        };
        Some(match meta.kind {
            RecordKind::End => RunState::Complete { attempt },
            RecordKind::Error => RunState::Failed {
                attempt,
                error: error(),
            },
            RecordKind::Exhausted => RunState::Exhausted { error: error() },
            RecordKind::Cancel => RunState::Cancelled { attempt },
            RecordKind::Chunk | RecordKind::Unknown(_) => RunState::Running { attempt },
        })
    }

    /// Whether the run is over: nothing more will be stored for it.
    pub fn is_final(&self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running { .. })
    }

    /// The state's name: `queued`, `running`, `complete`, `failed`,
    /// `exhausted`, `cancelled` or `expired` (D11).
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running { .. } => "running",
            RunState::Complete { .. } => "complete",
            RunState::Failed { .. } => "failed",
            RunState::Exhausted { .. } => "exhausted",
            RunState::Cancelled { .. } => "cancelled",
            RunState::Expired => "expired",
        }
    }
}

/// `running (attempt 2)`, `failed (attempt 1): 429 rate limited`, ...
impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        match self {
            RunState::Running { attempt }
            | RunState::Complete { attempt }
            | RunState::Cancelled { attempt }
                if *attempt > 0 =>
            {
                write!(f, " (attempt {attempt})")
            }
            RunState::Failed { attempt, error } => write!(f, " (attempt {attempt}): {error}"),
            RunState::Exhausted { error } => write!(f, ": {error}"),
            _ => Ok(()),
        }
    }
}
