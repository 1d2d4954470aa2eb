"""Errors of generation. Only BackendBusy is transient and retried."""


class GenerationError(Exception):
    """Base class; the message is meant for the researcher."""


class BackendBusy(GenerationError):
    """Transient: the backend cannot take work now (GPU memory, rate limit). Retried."""


class BackendError(GenerationError):
    """Permanent: this item cannot be generated with these parameters. Not retried."""


class BackendParamsError(GenerationError):
    """A system's backend parameters are invalid."""


class IngestError(GenerationError):
    """A medium was refused by ingest (bad, truncated, disguised or too large)."""


class GenerationRefused(GenerationError):
    """A job cannot start (study status, nothing to compare, a job already running)."""


class ImportArchiveError(GenerationError):
    """An import archive or folder was refused; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"Nothing imported: {shown}{more}.")
