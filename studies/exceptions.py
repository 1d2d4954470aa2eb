"""Domain errors of studies. Each message is written for the person who caused it; the
API turns ``http_status`` into the response status (config/api.py)."""


class StudyError(Exception):
    """A rule of the study was broken; the message says which and what to do."""

    http_status = 400


class InvalidTransition(StudyError):
    """The study's status does not allow this action."""

    http_status = 409


class StudyNotReady(StudyError):
    """The study cannot be launched yet; the message lists what is missing."""

    http_status = 409


class PromptImportError(StudyError):
    """A prompt file was refused; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"Nothing imported: {shown}{more}.")


class StudyNotOpen(StudyError):
    """The study is not taking answers (paused or closed)."""

    http_status = 409


class StudyFull(StudyError):
    """A pilot has admitted as many raters as it was set to."""

    http_status = 409


class NotYourAssignment(StudyError):
    """The pair does not exist or belongs to another rater; both look the same from outside."""

    http_status = 404


class AlreadyVoted(StudyError):
    """A second answer to a pair, other than a correction of the last one."""

    http_status = 409


class CorrectionRefused(StudyError):
    """Only the last answered comparison can be changed."""

    http_status = 409


class ClientIdReused(StudyError):
    """A client id that already names another rater's vote."""

    http_status = 409


class InvalidAnswer(StudyError):
    """An answer the study does not offer."""

    http_status = 400


class FlagRefused(StudyError):
    """A flag on a pair that is no longer on screen."""

    http_status = 409
