use bytes::Bytes;
use drehscheibe_model::{Envelope, RuleRef};

/// One output document and where it goes.
#[derive(Debug, Clone)]
pub struct PlannedOutput {
    /// Output role named by the rule (e.g. `fachverfahren`).
    pub target: String,
    /// Tenant whose connector receives it.
    pub tenant: String,
    /// Connector id within that tenant.
    pub connector: String,
    pub content_type: String,
    pub filename: String,
    pub bytes: Bytes,
    /// A container output ([`drehscheibe_rules::container`]): `bytes` is
    /// the rendered message until the worker packs the container, then
    /// the container itself (and this is `None`).
    pub container: Option<drehscheibe_rules::container::Container>,
    /// Set when the worker packed the container: `bytes` holds the
    /// attachments it needs (recorded as [`drehscheibe_model::Delivery::packed`]).
    pub packed: bool,
}

/// What the rule processor decided for a message.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// Responsible tenant (after delegation: the tenant that processes it).
    pub tenant: String,
    pub kommune_key: String,
    pub leistung: String,
    /// Exact rule version used.
    pub rule: RuleRef,
    /// The tenant that delegated the Leistung to `tenant`, if it was
    /// delegated (may read the message, ADR 0004).
    pub requested_by: Option<String>,
    /// The zuständige Stelle of the route, if it names one.
    pub stelle: Option<String>,
    /// Human-readable notes for the audit trail (e.g. delegation).
    pub notes: Vec<String>,
    pub outputs: Vec<PlannedOutput>,
}

/// Why a message could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteFailure {
    /// The message itself is at fault (no rule recognises it, no tenant for
    /// its Kommune key, `xsl:message terminate`): `rejected`.
    #[error("{reason}")]
    Rejected {
        reason: String,
        rule: Option<RuleRef>,
    },
    /// The hub's configuration or rules are at fault (tenant has no route
    /// for the Leistung, rule failed to load, transform error): `dead`,
    /// replayable once the configuration is fixed.
    #[error("{reason}")]
    Dead {
        reason: String,
        rule: Option<RuleRef>,
    },
}

impl RouteFailure {
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
            rule: None,
        }
    }
    pub fn dead(reason: impl Into<String>) -> Self {
        Self::Dead {
            reason: reason.into(),
            rule: None,
        }
    }
}

/// The rule processor as the engine sees it. Called on a blocking thread:
/// implementations may do CPU-heavy work (parsing, XPath, XSLT).
pub trait RoutingPolicy: Send + Sync {
    fn route(&self, envelope: &Envelope, payload: &Bytes) -> Result<RoutePlan, RouteFailure>;

    /// [`RoutingPolicy::route`] with the route's rule replaced by exactly
    /// `version` of the same rule: the dry run's comparison of two rule
    /// versions on one message ([`crate::Hub::dry_run`]). A policy without
    /// versioned rules refuses.
    fn route_with_version(
        &self,
        envelope: &Envelope,
        payload: &Bytes,
        version: &semver::Version,
    ) -> Result<RoutePlan, RouteFailure> {
        let _ = (envelope, payload);
        Err(RouteFailure::dead(format!(
            "this routing policy cannot run a chosen rule version ({version})"
        )))
    }
}
