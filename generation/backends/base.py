"""The interface every generation backend implements."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from generation.exceptions import BackendParamsError


@dataclass(frozen=True)
class GenerationRequest:
    """One item to make. System and prompt names are here for backends that look files up."""

    system_name: str
    prompt_text: str
    prompt_category: str
    seed: int
    params: Mapping[str, Any]
    modality: str = "image"
    # 0 on the first try; retries of a transient failure count up.
    attempt: int = 0


@dataclass(frozen=True)
class GeneratedMedia:
    """What a backend made: raw bytes (ingest validates and re-encodes them) and metadata
    for the researcher (never shown to raters)."""

    data: bytes
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Parameter:
    """One parameter a backend takes, declared with the backend: the admin shows these
    (range, default, what it does), so a new backend documents itself."""

    name: str
    kind: type  # int, float or str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    nullable: bool = False

    def describe(self) -> str:
        kind = {int: "whole number", float: "number", str: "text"}.get(self.kind, "value")
        span = f" {self.low:g} to {self.high:g}" if self.low is not None else ""
        default = (
            "required"
            if self.default is None and not self.nullable
            else (f"default {self.default!r}" if self.default is not None else "default none")
        )
        return f"{self.name}: {kind}{span}, {default}. {self.help}"


def validate_declared(
    backend: str, specs: Sequence[Parameter], params: Mapping[str, Any]
) -> dict[str, Any]:
    """Check ``params`` against a backend's declared parameters: no unknown names, each
    of its kind and within its range; returns them with defaults filled in. Raises
    BackendParamsError naming the backend and the parameter."""
    if not isinstance(params, Mapping):
        raise BackendParamsError(f"{backend} parameters must be a JSON object.")
    known = {spec.name for spec in specs}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BackendParamsError(
            f"unknown {backend} parameter(s) {unknown}; known: {sorted(known)}."
        )
    clean: dict[str, Any] = {}
    for spec in specs:
        value = params.get(spec.name, spec.default)
        if value is None:
            if not spec.nullable:
                raise BackendParamsError(f"{backend} parameter {spec.name!r} is required.")
            clean[spec.name] = None
            continue
        if spec.kind is str:
            if not isinstance(value, str):
                raise BackendParamsError(
                    f"{backend} parameter {spec.name!r} must be text, not {value!r}."
                )
            clean[spec.name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BackendParamsError(
                f"{backend} parameter {spec.name!r} must be a number, not {value!r}."
            )
        if spec.kind is int and value != int(value):
            raise BackendParamsError(f"{backend} parameter {spec.name!r} must be a whole number.")
        if spec.low is not None and spec.high is not None and not spec.low <= value <= spec.high:
            raise BackendParamsError(
                f"{backend} parameter {spec.name!r}={value} is outside "
                f"[{spec.low:g}, {spec.high:g}]."
            )
        clean[spec.name] = spec.kind(value)
    return clean


class Backend(Protocol):
    #: Registry key stored in System.backend.
    name: str
    #: Celery queue the backend's work goes to: "gpu" or "default".
    queue: str
    #: What ``backend_params`` may hold.
    parameters: tuple[Parameter, ...]

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return the parameters with defaults filled in; raise BackendParamsError."""
        ...

    def plan(
        self,
        *,
        params: Mapping[str, Any],
        system_name: str,
        prompts: Sequence[tuple[int, str]],
        seeds: range,
    ) -> list[tuple[int, int]]:
        """The (prompt id, seed) items this system should have: every prompt and seed for a
        generator, the listed files for an import."""
        ...

    def generate(self, request: GenerationRequest) -> GeneratedMedia:
        """Make one medium; raise BackendBusy (transient) or BackendError (permanent)."""
        ...
