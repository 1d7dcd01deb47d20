"""One root exception; every message says what to do next."""


class ReportQAError(Exception):
    """Root of every error we raise on purpose. The CLI and UI print it without a traceback."""


class InputError(ReportQAError):
    """A file or argument we cannot use (names the file and the fix)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class IndexNotReadyError(ReportQAError):
    """The index is missing, empty or was built with another embedder."""


class QuestionError(ReportQAError):
    """The question cannot be answered as asked (empty, too long, no words)."""


class BackendError(ReportQAError):
    """An external service (Chroma server, LLM endpoint) failed."""
