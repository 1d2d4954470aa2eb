"""The backend registry: System.backend names one of these."""

from generation.backends.base import Backend, GeneratedMedia, GenerationRequest
from generation.backends.diffusers import DiffusersBackend, DiffusersVideoBackend
from generation.backends.importer import ImportBackend
from generation.backends.synthetic import SyntheticBackend
from generation.exceptions import BackendParamsError

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (SyntheticBackend(), ImportBackend(), DiffusersBackend(), DiffusersVideoBackend())
}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendParamsError(
            f"unknown backend {name!r}; available: {', '.join(sorted(BACKENDS))}."
        ) from None


__all__ = ["BACKENDS", "Backend", "GeneratedMedia", "GenerationRequest", "get_backend"]
