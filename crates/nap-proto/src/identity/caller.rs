//! The caller's choices before it signs (§13.6.2, §13.9): which subject to
//! publish to and which to sign, and whether a request may go out unsigned.

use super::trust::MinSenderTrust;
use super::verify::SubjectRename;

/// A service import that the caller's own account renamed (§13.6.2): the
/// exporter's subjects under `exporter_prefix`, which `$SRV.INFO` reports,
/// are reachable in the caller's account under `local_prefix`.
///
/// The caller publishes to the local name (the only one it can reach) and
/// signs the exporter's subject (the one the receiver sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRename {
    /// Maps an advertised (exporter's) subject to the local one.
    to_local: SubjectRename,
    /// Maps a local subject back to the exporter's (for heartbeats the
    /// caller receives under the local name, §13.7.1 (c)).
    to_exporter: SubjectRename,
}

impl ImportRename {
    /// A rename of the leading tokens `exporter_prefix` to `local_prefix`.
    /// Both are literal subjects without wildcards; `None` otherwise.
    pub fn new(local_prefix: &str, exporter_prefix: &str) -> Option<ImportRename> {
        Some(ImportRename {
            to_local: SubjectRename::new(exporter_prefix, local_prefix)?,
            to_exporter: SubjectRename::new(local_prefix, exporter_prefix)?,
        })
    }

    /// The local subject for an advertised one, when this rename covers it.
    pub fn local_subject(&self, advertised: &str) -> Option<String> {
        self.to_local.published_subject(advertised)
    }

    /// The receiver's view of the same rename (§13.7.1 (c)): a message
    /// arriving under the local name was published under the exporter's.
    pub fn arrival_rename(&self) -> SubjectRename {
        self.to_exporter.clone()
    }
}

/// Where one request goes and what its `Agent-Sender` signs (§13.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// The subject to publish to.
    pub publish: String,
    /// The subject to sign (`sub`).
    pub sub: String,
}

impl Addressing {
    /// The addressing of a request to the `advertised` endpoint subject:
    /// published and signed as advertised, unless the first rename that
    /// covers it applies, which publishes to the local name and signs the
    /// advertised (exporter's) subject.
    pub fn of(advertised: &str, renames: &[ImportRename]) -> Addressing {
        let publish = renames
            .iter()
            .find_map(|r| r.local_subject(advertised))
            .unwrap_or_else(|| advertised.to_owned());
        Addressing {
            publish,
            sub: advertised.to_owned(),
        }
    }
}

/// What a caller does about `Agent-Sender` for one request (§13.4, §13.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPlan {
    /// Sign the request.
    Sign,
    /// Send it without any `Agent-Sender` header (never a claim, never an
    /// empty one: §13.4).
    Unsigned,
    /// Fail locally, publishing nothing: the endpoint requires `signed`
    /// and the caller cannot sign (§13.9).
    Refuse,
}

impl SendPlan {
    /// The plan for an endpoint requiring `required` from a caller that
    /// can sign or not.
    pub fn decide(required: MinSenderTrust, can_sign: bool) -> SendPlan {
        match (can_sign, required) {
            (true, _) => SendPlan::Sign,
            (false, MinSenderTrust::Any) => SendPlan::Unsigned,
            (false, MinSenderTrust::Signed) => SendPlan::Refuse,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_import_publishes_locally_and_signs_the_exporters_subject() {
        let renames = [ImportRename::new("partner.agents", "agents").unwrap()];
        let a = Addressing::of("agents.prompt.echo.alice.demo", &renames);
        assert_eq!(a.publish, "partner.agents.prompt.echo.alice.demo");
        assert_eq!(a.sub, "agents.prompt.echo.alice.demo");
        // Not covered: as advertised.
        let b = Addressing::of("other.prompt.echo.alice.demo", &renames);
        assert_eq!(b.publish, "other.prompt.echo.alice.demo");
        assert_eq!(b.sub, b.publish);
        // Whole tokens only.
        let c = Addressing::of("agentsx.prompt.a.b.c", &renames);
        assert_eq!(c.publish, "agentsx.prompt.a.b.c");
        // The receiver's view maps the local arrival back.
        assert_eq!(
            renames[0]
                .arrival_rename()
                .published_subject("partner.agents.hb.echo.alice.demo")
                .as_deref(),
            Some("agents.hb.echo.alice.demo")
        );
        assert!(ImportRename::new("a.*", "agents").is_none());
    }

    #[test]
    fn a_signed_only_endpoint_refuses_a_caller_that_cannot_sign() {
        use MinSenderTrust::{Any, Signed};
        assert_eq!(SendPlan::decide(Signed, false), SendPlan::Refuse);
        assert_eq!(SendPlan::decide(Any, false), SendPlan::Unsigned);
        assert_eq!(SendPlan::decide(Any, true), SendPlan::Sign);
        assert_eq!(SendPlan::decide(Signed, true), SendPlan::Sign);
    }
}
