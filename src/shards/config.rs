//! The shards' slice of `[tool.pytest-dynamo]`: what `--dynamo-shard`
//! keeps together.

use serde::Deserialize;

use crate::shards::Group;

/// `[tool.pytest-dynamo.shards]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    pub group: Group,
}
