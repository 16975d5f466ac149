//! Cancelling a run: the `cancel` record (durable D13).

use super::headers::{Append, LastRecord, RecordKind, RecordMeta};
use super::run_id::RunId;
use super::state::RunState;
use super::subjects::DurableSubjects;

/// A run that is over already: nothing may be stored after its final
/// record (D8.1), a cancel included (D13).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the run is over ({state}): nothing more can be stored for it (D13)")]
pub struct RunSettled {
    /// Its state.
    pub state: Box<RunState>,
}

/// The `cancel` record for generation `prompt_seq` of `run`, given the last
/// record on its reply subject (D13), or the run's state when it is over
/// already and nothing may be stored.
///
/// The record expects `last`'s sequence, so that a cancel and a final
/// record exclude each other: when the publication is refused (`10071`),
/// read the last record again and call this again.
///
/// ```
/// use nap_proto::Identity;
/// use nap_proto::durable::{DurableSubjects, RunId, cancel_record};
///
/// let subjects = DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo").unwrap());
/// let run = RunId::from_random([1; 16]);
/// let record = cancel_record(&subjects, &run, 41, None).unwrap();
/// assert_eq!(record.header("Nap-Event"), Some("cancel"));
/// assert_eq!(record.header("Nap-Attempt"), Some("0"));
/// assert_eq!(record.header("Nats-Expected-Last-Subject-Sequence"), Some("0"));
/// ```
pub fn cancel_record(
    subjects: &DurableSubjects,
    run: &RunId,
    prompt_seq: u64,
    last: Option<&LastRecord>,
) -> Result<Append, RunSettled> {
    let ours = last.and_then(|l| l.of_generation(prompt_seq));
    if let Some(state) = RunState::derive(Some(prompt_seq), last).filter(RunState::is_final) {
        return Err(RunSettled {
            state: Box::new(state),
        });
    }
    let meta = RecordMeta {
        kind: RecordKind::Cancel,
        attempt: ours.map_or(0, |m| m.attempt),
        index: None,
        prompt_seq,
    };
    Ok(Append {
        subject: subjects.reply(run),
        headers: meta.headers(run, last.map_or(0, |l| l.seq)),
        body: Vec::new(),
    })
}
