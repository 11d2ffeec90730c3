//! One run's engine: the configuration and the taxonomy built from it.
//! Lives on the pytest `config.stash`, never in a process-wide static, so
//! in-process pytester runs do not share state.

use std::path::Path;

use crate::config::{self, Config};
use crate::config_check;
use crate::error::Result;
use crate::taxonomy::customize;
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

/// The taxonomy of a configuration checked whole, once, where it is loaded:
/// a mistake stops pytest at its start, not the command or flag that first
/// reads the key.
fn checked_taxonomy(config: &Config, source: &str) -> Result<Taxonomy> {
    config_check::names(config, source)?;
    let taxonomy = customize::taxonomy(config, source)?;
    config_check::whole(config, &taxonomy, source)?;
    Ok(taxonomy)
}

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
        let taxonomy = checked_taxonomy(&loaded.config, shown)?;
        Ok(Engine {
            config: loaded.config,
            taxonomy,
            source: loaded.source,
            note: loaded.note,
        })
    }

    /// The built-in taxonomy and defaults, without reading any file: what an
    /// unconfigured project registers its markers from.
    pub fn builtin() -> Result<Self> {
        let config = Config::default();
        let taxonomy = customize::taxonomy(&config, BUILT_IN)?;
        Ok(Engine {
            config,
            taxonomy,
            source: None,
            note: None,
        })
    }

    pub fn from_config(config: Config, source: &str) -> Result<Self> {
        let taxonomy = checked_taxonomy(&config, source)?;
        Ok(Engine {
            config,
            taxonomy,
            source: Some(source.to_string()),
            note: None,
        })
    }
}
