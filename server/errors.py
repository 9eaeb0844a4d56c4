"""Domain errors raised by services; the API maps each to one problem+json response.

    WindFlowError                 INTERNAL_ERROR   500
    ├── ValidationFailed          VALIDATION_ERROR 422  (carries field errors)
    ├── NotFound                  NOT_FOUND        404
    ├── AuthInvalid               AUTH_INVALID     401
    ├── Forbidden                 FORBIDDEN        403
    ├── Conflict                  CONFLICT         409
    ├── RateLimited               RATE_LIMITED     429  (carries retry_after)
    │   ├── AccountLocked         ACCOUNT_LOCKED   429
    │   └── BudgetExceeded        ASSISTANT_BUDGET_EXCEEDED 429
    ├── ProviderFailed            LLM_PROVIDER_ERROR 502
    └── NotConfigured             ASSISTANT_NOT_CONFIGURED 503

Services never raise HTTP exceptions; ``server/api/problems.py`` is the one place that turns these
into responses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One invalid input: a dotted path (``body.email``, ``query.size``) and what is wrong."""

    field: str
    message: str


class WindFlowError(Exception):
    code = "INTERNAL_ERROR"
    status = 500
    title = "Internal server error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(WindFlowError):
    code = "VALIDATION_ERROR"
    status = 422
    title = "Validation failed"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class NotFound(WindFlowError):
    code = "NOT_FOUND"
    status = 404
    title = "Not found"


class AuthInvalid(WindFlowError):
    code = "AUTH_INVALID"
    status = 401
    title = "Authentication failed"


class Forbidden(WindFlowError):
    code = "FORBIDDEN"
    status = 403
    title = "Forbidden"


class Conflict(WindFlowError):
    code = "CONFLICT"
    status = 409
    title = "Conflict"


class RateLimited(WindFlowError):
    code = "RATE_LIMITED"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class AccountLocked(RateLimited):
    code = "ACCOUNT_LOCKED"
    title = "Account temporarily locked"


class BudgetExceeded(RateLimited):
    code = "ASSISTANT_BUDGET_EXCEEDED"
    title = "Assistant token budget exceeded"


class ProviderFailed(WindFlowError):
    """The LLM provider refused or failed; ``detail`` is its message, never the key."""

    code = "LLM_PROVIDER_ERROR"
    status = 502
    title = "LLM provider error"


class NotConfigured(WindFlowError):
    code = "ASSISTANT_NOT_CONFIGURED"
    status = 503
    title = "Assistant not configured"
