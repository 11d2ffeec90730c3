//! One run's engine: the configuration and the taxonomy built from it.
//! Lives on the pytest `config.stash`, never in a process-wide static, so
//! in-process pytester runs do not share state.

use std::path::Path;

use crate::config::{self, Config};
use crate::customize;
use crate::error::Result;
use crate::framework::Frameworks;
use crate::gpu::rules::Rules;
use crate::pipeline::Pipelines;
use crate::taxonomy::Taxonomy;

#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub config: Config,
    pub taxonomy: Taxonomy,
    /// The file the configuration came from (None: built-in defaults).
    pub source: Option<String>,
    /// Said in the header and the lint when the configuration is not the
    /// rootdir's own (a nested pytest root using the table above it).
    pub note: Option<String>,
}

/// How messages name the configuration when no file holds one.
const BUILT_IN: &str = "built-in defaults";

impl Engine {
    /// Where the configuration came from, for messages.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(BUILT_IN)
    }

    /// Load and check the whole configuration: the taxonomy, the pipelines,
    /// the framework rules and the GPU and package rules. Collection and the
    /// lint both load through here, so a configuration one refuses the other
    /// refuses too, with the same message.
    pub fn load(rootdir: &Path, explicit: Option<&Path>) -> Result<Self> {
        let loaded = config::load(rootdir, explicit)?;
        let shown = loaded.source.as_deref().unwrap_or(BUILT_IN);
        let taxonomy = customize::taxonomy(&loaded.config, shown)?;
        check_the_rest(&loaded.config, &taxonomy, shown)?;
        Ok(Engine {
            config: loaded.config,
            taxonomy,
            source: loaded.source,
            note: loaded.note,
        })
    }

    pub fn from_config(config: Config, source: &str) -> Result<Self> {
        let taxonomy = customize::taxonomy(&config, source)?;
        check_the_rest(&config, &taxonomy, source)?;
        Ok(Engine {
            config,
            taxonomy,
            source: Some(source.to_string()),
            note: None,
        })
    }
}

/// Build what the run builds from the configuration later (cheap: a few
/// dozen expressions), only to find its errors now.
fn check_the_rest(config: &Config, taxonomy: &Taxonomy, source: &str) -> Result<()> {
    Pipelines::build(taxonomy, &config.pipelines, source)?;
    Frameworks::build(taxonomy, &config.frameworks, source)?;
    Rules::new(&config.gpu, taxonomy, source)?.with_packages(
        &config.packages,
        &config.gpu,
        taxonomy,
        source,
    )?;
    Ok(())
}
