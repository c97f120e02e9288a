//! Glue to the rule depot: [`XsltFactory`] implements
//! [`drehscheibe_rules::TransformerFactory`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use drehscheibe_rules::{InputDocument, TransformOutput, Transformer, TransformerFactory};

use crate::{Stylesheet, TransformError};

/// Loads stylesheets with this crate's processor for the rule depot.
#[derive(Debug, Clone, Copy, Default)]
pub struct XsltFactory;

impl TransformerFactory for XsltFactory {
    fn load(
        &self,
        stylesheet: &Path,
    ) -> Result<Arc<dyn Transformer>, drehscheibe_rules::TransformError> {
        let compiled = Stylesheet::compile_file(stylesheet).map_err(|e| {
            drehscheibe_rules::TransformError::Stylesheet {
                path: stylesheet.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        Ok(Arc::new(compiled))
    }
}

impl Transformer for Stylesheet {
    fn transform(
        &self,
        input: &InputDocument,
        params: &BTreeMap<String, String>,
    ) -> Result<TransformOutput, drehscheibe_rules::TransformError> {
        let outcome = self
            .transform_document_with_messages(input.document(), params)
            .map_err(map_error)?;
        Ok(TransformOutput::new(outcome.bytes).with_messages(outcome.messages))
    }
}

/// Maps this crate's run-time errors onto the depot's error type.
pub(crate) fn map_error(e: TransformError) -> drehscheibe_rules::TransformError {
    match e {
        TransformError::Terminated { message } => {
            drehscheibe_rules::TransformError::Terminated(message)
        }
        other => drehscheibe_rules::TransformError::Failed(other.to_string()),
    }
}
