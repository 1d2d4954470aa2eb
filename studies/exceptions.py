"""Domain errors of studies. Each message is written for the person who caused it."""


class StudyError(Exception):
    """A rule of the study was broken; the message says which and what to do."""


class InvalidTransition(StudyError):
    """The study's status does not allow this action."""


class StudyNotReady(StudyError):
    """The study cannot be launched yet; the message lists what is missing."""


class PromptImportError(StudyError):
    """A prompt file was refused; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"Nothing imported: {shown}{more}.")
