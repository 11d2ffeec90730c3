"""pytest-dynamo: a CI testing strategy for GPU inference projects, in pytest."""

from pytest_dynamo._core import ConfigError, __version__
from pytest_dynamo._warnings import DynamoWarning, MarkerAliasWarning

__all__ = ["ConfigError", "DynamoWarning", "MarkerAliasWarning", "__version__"]
