//! The production [`RoutingPolicy`]: rule depot + tenant configuration.

use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_config::HubConfig;
use drehscheibe_model::{Envelope, IntakeError};
use drehscheibe_rules::{
    Depot, InputDocument, InputError, RenderContext, RouteError, SchemaError, TransformError,
};

use crate::{PlannedOutput, RouteFailure, RoutePlan, RoutingPolicy};

/// Routes with the rule depot and the tenant configuration:
///
/// 1. parse the payload (JSON is offered in the `json-to-xml` form);
/// 2. the depot recognises the rule (newest version of each rule id) and
///    extracts the Kommune key and the Leistung;
/// 3. the Kommune key names the tenant (AGS, ARS or org id);
/// 4. the tenant's route for the Leistung is resolved, following a
///    delegation ("umlenken") to a neighbour Kommune;
/// 5. the pinned rule version's `[input] schema`, if any, validates the
///    payload (invalid: `rejected`, with every error's line and column);
/// 6. the route's pinned rule version renders the outputs with the route's
///    parameters, each validated against its declared schema (invalid:
///    `dead` — a broken rule must not reach a Fachverfahren); each output
///    role is mapped to a connector of the serving tenant.
///
/// Failures the message is to blame for become `rejected`; failures of
/// configuration or rules become `dead` (replayable once fixed).
///
/// The configuration can be swapped while messages are routed
/// ([`DepotRouter::set_config`], ADR 0021): a message is routed with the
/// configuration in force when its routing starts.
pub struct DepotRouter {
    depot: arc_swap::ArcSwap<Depot>,
    config: arc_swap::ArcSwap<HubConfig>,
}

impl DepotRouter {
    pub fn new(depot: Arc<Depot>, config: Arc<HubConfig>) -> Self {
        Self {
            depot: arc_swap::ArcSwap::new(depot),
            config: arc_swap::ArcSwap::new(config),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<HubConfig> {
        self.config.load_full()
    }

    /// Put `config` in force for every message routed from now on.
    pub fn set_config(&self, config: Arc<HubConfig>) {
        self.config.store(config);
    }

    /// The rule depot in force.
    pub fn depot(&self) -> Arc<Depot> {
        self.depot.load_full()
    }

    /// Put `depot` in force (a rule version was published).
    pub fn set_depot(&self, depot: Arc<Depot>) {
        self.depot.store(depot);
    }
}

/// Map an input problem found at intake to the intake error.
pub(crate) fn intake_error(e: InputError) -> IntakeError {
    match e {
        InputError::UnsupportedContentType(ct) => IntakeError::UnsupportedMediaType(ct),
        e @ (InputError::Doctype { .. } | InputError::TooDeep { .. }) => {
            IntakeError::Hostile(e.to_string())
        }
        e => IntakeError::Malformed(e.to_string()),
    }
}

fn route_failure(e: RouteError) -> RouteFailure {
    match e {
        RouteError::NoMatchingRule { .. } => RouteFailure::rejected(e.to_string()),
        RouteError::MissingKommune { ref rule, .. }
        | RouteError::MissingLeistung { ref rule, .. } => RouteFailure::Rejected {
            rule: Some(rule.clone()),
            reason: e.to_string(),
        },
        RouteError::Evaluation { ref rule, .. } | RouteError::RuleUnavailable { ref rule, .. } => {
            RouteFailure::Dead {
                rule: Some(rule.clone()),
                reason: e.to_string(),
            }
        }
        RouteError::Ambiguous { .. } => RouteFailure::dead(e.to_string()),
    }
}

impl RoutingPolicy for DepotRouter {
    fn route(&self, envelope: &Envelope, payload: &Bytes) -> Result<RoutePlan, RouteFailure> {
        self.route_as(envelope, payload, None)
    }

    fn route_with_version(
        &self,
        envelope: &Envelope,
        payload: &Bytes,
        version: &semver::Version,
    ) -> Result<RoutePlan, RouteFailure> {
        self.route_as(envelope, payload, Some(version))
    }
}

impl DepotRouter {
    /// Route; with `version`, the route's rule in exactly that version
    /// instead of the one its pin resolves to.
    fn route_as(
        &self,
        envelope: &Envelope,
        payload: &Bytes,
        version: Option<&semver::Version>,
    ) -> Result<RoutePlan, RouteFailure> {
        let channel = envelope.channel.as_str();
        let content_type = envelope.content_type.as_str();
        let doc = InputDocument::parse(payload, content_type)
            .map_err(|e| RouteFailure::rejected(format!("payload: {e}")))?
            .with_meta(envelope.correlation_ids.clone());
        let depot = self.depot.load();
        let found = depot
            .recognize(&doc, channel, content_type)
            .map_err(route_failure)?;
        let recognised = found.rule.rule_ref();
        let rejected = |reason: String| RouteFailure::Rejected {
            reason,
            rule: Some(recognised.clone()),
        };
        let dead = |reason: String| RouteFailure::Dead {
            reason,
            rule: Some(recognised.clone()),
        };

        let config = self.config.load();
        let tenant = config.tenant_by_key(&found.kommune_key).ok_or_else(|| {
            rejected(format!(
                "no Kommune is configured for key {:?} (extracted by rule {recognised})",
                found.kommune_key
            ))
        })?;
        let resolved = config
            .resolve_route(&tenant.id, &found.leistung)
            .ok_or_else(|| {
                dead(format!(
                    "Kommune {} has no route for Leistung {}",
                    tenant.id, found.leistung
                ))
            })?;
        let package = match version {
            Some(v) => depot.get(&resolved.rule.id, v),
            None => depot.resolve(&resolved.rule.id, &resolved.rule.version),
        }
        .ok_or_else(|| match version {
            Some(v) => dead(format!(
                "rule {} has no version {v} in the depot",
                resolved.rule.id
            )),
            None => dead(format!(
                "route of {} for Leistung {} pins rule {}, which is not in the depot",
                resolved.tenant.id, found.leistung, resolved.rule
            )),
        })?;
        let rule = package.rule_ref();
        if package.id() != found.rule.id() || package.version() != found.rule.version() {
            let again = package
                .extract(&doc, channel, content_type)
                .map_err(route_failure)?;
            if again != (found.kommune_key.clone(), found.leistung.clone()) {
                return Err(RouteFailure::Dead {
                    reason: format!(
                        "pinned rule {rule} extracts Kommune {:?} / Leistung {:?}, but {recognised} extracted {:?} / {:?}",
                        again.0, again.1, found.kommune_key, found.leistung
                    ),
                    rule: Some(rule),
                });
            }
        }

        package.check_input(payload).map_err(|e| match e {
            SchemaError::Invalid(violation) => RouteFailure::Rejected {
                reason: format!("payload {violation} (input schema of rule {rule})"),
                rule: Some(rule.clone()),
            },
            other => RouteFailure::Dead {
                reason: format!("rule {rule}: input {other}"),
                rule: Some(rule.clone()),
            },
        })?;

        let message_id = envelope.id.to_string();
        let payload_file =
            drehscheibe_rules::container::payload_file(&message_id, &envelope.content_type);
        let parts: Vec<(Option<&str>, &str, &str)> = envelope
            .attachments
            .iter()
            .map(|a| {
                (
                    a.filename.as_deref(),
                    a.name.as_str(),
                    a.content_type.as_str(),
                )
            })
            .collect();
        let attachments = drehscheibe_rules::container::render_attachments(&message_id, &parts);
        let ctx = RenderContext {
            payload_file,
            attachments,
            message_id: envelope.id,
            leistung: found.leistung.clone(),
            kommune: found.kommune_key.clone(),
            channel: envelope.channel.clone(),
            tenant: resolved.tenant.id.clone(),
            received_at: envelope.received_at.to_rfc3339(),
        };
        let rendered = package
            .render(&doc, payload, &resolved.route.params, &ctx)
            .map_err(|e| match e {
                TransformError::Terminated(text) => RouteFailure::Rejected {
                    reason: format!("rule {rule} refused the message: {text}"),
                    rule: Some(rule.clone()),
                },
                other => RouteFailure::Dead {
                    reason: format!("rule {rule}: {other}"),
                    rule: Some(rule.clone()),
                },
            })?;

        let mut notes = Vec::new();
        let mut outputs = Vec::with_capacity(rendered.len());
        for o in rendered {
            record_messages(&mut notes, &rule, &o.target, &o.messages);
            let connector =
                resolved
                    .route
                    .targets
                    .get(&o.target)
                    .ok_or_else(|| RouteFailure::Dead {
                        reason: format!(
                    "route of {} for Leistung {} maps no connector to output {:?} of rule {rule}",
                    resolved.tenant.id, found.leistung, o.target
                ),
                        rule: Some(rule.clone()),
                    })?;
            outputs.push(PlannedOutput {
                target: o.target,
                tenant: resolved.tenant.id.clone(),
                connector: connector.clone(),
                content_type: o.content_type,
                filename: o.filename,
                bytes: o.bytes,
                container: o.container,
                packed: false,
            });
        }
        if resolved.is_delegated() {
            notes.push(format!(
                "Leistung delegated by {} to {}",
                resolved.requested_by.id, resolved.tenant.id
            ));
        }
        if let Some(stelle) = &resolved.route.stelle {
            notes.push(format!("Stelle {stelle}"));
        }
        if recognised != rule {
            notes.push(format!("recognised by {recognised}"));
        }
        // Which configuration routed it: during a rolling restart several
        // versions route side by side (the text is the store's config
        // snapshot under this digest).
        notes.push(format!(
            "configuration {}",
            config.digest.get(..12).unwrap_or(&config.digest)
        ));
        Ok(RoutePlan {
            tenant: resolved.tenant.id.clone(),
            requested_by: resolved
                .is_delegated()
                .then(|| resolved.requested_by.id.clone()),
            kommune_key: found.kommune_key,
            leistung: found.leistung,
            rule,
            stelle: resolved.route.stelle.clone(),
            notes,
            outputs,
        })
    }
}

/// Most `xsl:message` texts per output taken into the audit trail, and
/// most characters per text: a rule that chatters (or a message that makes
/// it chatter) must not grow the audit log without bound.
const MAX_RULE_MESSAGES: usize = 20;
const MAX_RULE_MESSAGE_CHARS: usize = 500;

/// Logs the stylesheet's non-terminating `xsl:message`s and notes them
/// for the audit trail (bounded, truncated).
fn record_messages(
    notes: &mut Vec<String>,
    rule: &drehscheibe_model::RuleRef,
    target: &str,
    messages: &[String],
) {
    for text in messages.iter().take(MAX_RULE_MESSAGES) {
        let mut text = text.trim().to_string();
        if text.chars().count() > MAX_RULE_MESSAGE_CHARS {
            text = text
                .chars()
                .take(MAX_RULE_MESSAGE_CHARS)
                .collect::<String>()
                + "…";
        }
        tracing::info!(rule = %rule, output = target, "xsl:message: {text}");
        notes.push(format!("xsl:message ({target}): {text}"));
    }
    if messages.len() > MAX_RULE_MESSAGES {
        notes.push(format!(
            "xsl:message ({target}): {} further messages not recorded",
            messages.len() - MAX_RULE_MESSAGES
        ));
    }
}
