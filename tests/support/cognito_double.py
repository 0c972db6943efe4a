"""Re-export of the strict Cognito double, which now lives in ``proxy.devtools``."""

from proxy.devtools.cognito_double import *  # noqa: F403
from proxy.devtools.cognito_double import (
    CognitoDouble,
    CognitoError,
    format_timestamp,
    running_double,
)

__all__ = ["CognitoDouble", "CognitoError", "format_timestamp", "running_double"]
