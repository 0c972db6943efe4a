"""Local development tools: the strict Cognito double used by tests and by ``cognito-gate demo``.

Nothing here is used by ``serve``.
"""
