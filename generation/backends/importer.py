"""Import backend: existing outputs from a folder or a zip, listed in a manifest CSV.

This is how researchers bring in images and videos of API-only models. The manifest
(``manifest.csv`` at the top of the folder or zip) has the columns
``file, system, prompt, seed`` and optionally ``category``; ``file`` is a path inside the
folder or zip. Files are read, never extracted, and every one goes through ingest like a
generated output.
"""

import csv
import functools
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from generation.backends.base import GeneratedMedia, GenerationRequest, Parameter
from generation.exceptions import BackendError, BackendParamsError, ImportArchiveError

MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS = ("file", "system", "prompt", "seed")
# A single member may not unpack to more than this, nor expand more than 200-fold.
MAX_MEMBER_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
# Members of one archive: a central directory of millions of entries is a bomb too.
MAX_MEMBERS = 100_000
# A first filter on names only: ingest still decides by the bytes.
EXTENSIONS = {
    "image": frozenset({".png", ".jpg", ".jpeg", ".webp"}),
    "video": frozenset({".mp4", ".webm", ".mov"}),
}


def media_kind(name: str) -> str | None:
    """ "image" or "video" by the file's extension; None for anything else."""
    suffix = PurePosixPath(name).suffix.lower()
    return next((kind for kind, allowed in EXTENSIONS.items() if suffix in allowed), None)


@dataclass(frozen=True)
class ManifestRow:
    line: int
    file: str
    system: str
    prompt: str
    category: str
    seed: int


def _safe_member(name: str) -> str | None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return str(path)


class ImportSource:
    """A folder or a zip file, read without extracting anything."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            self._zip: zipfile.ZipFile | None = None
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            if len(self._zip.infolist()) > MAX_MEMBERS:
                self._zip.close()
                raise ImportArchiveError(
                    [f"{path.name} holds more than {MAX_MEMBERS:,} files (zip bomb guard)"]
                )
        else:
            raise ImportArchiveError([f"{path.name} is neither a folder nor a zip file"])

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def names(self) -> set[str]:
        if self._zip is not None:
            return {n for n in self._zip.namelist() if not n.endswith("/")}
        return {
            str(p.relative_to(self.path).as_posix()) for p in self.path.rglob("*") if p.is_file()
        }

    def read(self, name: str) -> bytes:
        member = _safe_member(name)
        if member is None:
            raise BackendError(f"unsafe path {name!r} in the import")
        if self._zip is not None:
            try:
                info = self._zip.getinfo(member)
            except KeyError:
                raise BackendError(f"{member!r} is not in {self.path.name}") from None
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MAX_MEMBER_BYTES or ratio > MAX_COMPRESSION_RATIO:
                raise BackendError(f"{member!r} unpacks to {info.file_size} bytes (zip bomb guard)")
            return self._zip.read(info)
        target = (self.path / member).resolve()
        if not target.is_relative_to(self.path.resolve()) or not target.is_file():
            raise BackendError(f"{member!r} is not a file inside {self.path}")
        if target.stat().st_size > MAX_MEMBER_BYTES:
            raise BackendError(f"{member!r} is larger than {MAX_MEMBER_BYTES} bytes")
        return target.read_bytes()


def read_manifest(path: Path) -> list[ManifestRow]:
    """Every row of the manifest, checked; raises ImportArchiveError naming each bad line."""
    source = ImportSource(path)
    try:
        names = source.names()
        candidates = [n for n in names if PurePosixPath(n).name == MANIFEST_NAME]
        if not candidates:
            raise ImportArchiveError([f"no {MANIFEST_NAME} in {path.name}"])
        manifest = min(candidates, key=lambda n: len(PurePosixPath(n).parts))
        base = PurePosixPath(manifest).parent
        try:
            text = source.read(manifest).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportArchiveError([f"{MANIFEST_NAME} is not UTF-8 text"]) from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ImportArchiveError([f"{MANIFEST_NAME} line 1: missing column(s) {missing}"])
        problems: list[str] = []
        rows: list[ManifestRow] = []
        seen: dict[tuple[str, str, int], int] = {}
        for record in reader:
            line = reader.line_num
            values = {c: (record.get(c) or "").strip() for c in (*REQUIRED_COLUMNS, "category")}
            empty = [c for c in REQUIRED_COLUMNS if not values[c]]
            if empty:
                problems.append(f"line {line}: empty {', '.join(empty)}")
                continue
            try:
                seed = int(values["seed"])
                if seed < 0:
                    raise ValueError
            except ValueError:
                problems.append(f"line {line}: seed {values['seed']!r} is not a whole number >= 0")
                continue
            member = _safe_member(
                str(base / values["file"]) if str(base) != "." else values["file"]
            )
            if member is None or member not in names:
                problems.append(f"line {line}: file {values['file']!r} is not in {path.name}")
                continue
            if media_kind(member) is None:
                allowed = ", ".join(sorted(EXTENSIONS["image"] | EXTENSIONS["video"]))
                problems.append(f"line {line}: file {values['file']!r} is not one of {allowed}")
                continue
            key = (values["system"], values["prompt"], seed)
            if key in seen:
                problems.append(f"line {line}: same system, prompt and seed as line {seen[key]}")
                continue
            seen[key] = line
            rows.append(
                ManifestRow(
                    line, member, values["system"], values["prompt"], values["category"], seed
                )
            )
        if not rows and not problems:
            problems.append(f"{MANIFEST_NAME} has no rows")
        if problems:
            raise ImportArchiveError(problems)
        return rows
    finally:
        source.close()


@functools.lru_cache(maxsize=8)
def _index(path: str, mtime_ns: int) -> dict[tuple[str, str, int], str]:
    """(system, prompt, seed) -> member, cached per file version within a worker."""
    return {(r.system, r.prompt, r.seed): r.file for r in read_manifest(Path(path))}


def inside_import_root(raw: str) -> Path:
    """The folder or zip ``raw`` names, resolved (symlinks followed), if it lies under
    IMPORT_ROOT; anything else is refused, so an admin form or a system's parameters
    cannot make the server read files from elsewhere."""
    root = Path(settings.IMPORT_ROOT).resolve()
    try:
        path = Path(raw).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise BackendParamsError(f"{raw!r} does not exist on the server.") from None
    if not path.is_relative_to(root):
        raise BackendParamsError(
            f"{raw!r} is outside the import folder {root} (VERDICT_IMPORT_ROOT): put the "
            "folder or zip there and give its path."
        )
    return path


class ImportBackend:
    name = "import"
    # Reading files is light work.
    queue = "default"
    parameters: tuple[Parameter, ...] = (
        Parameter(
            "path",
            str,
            None,
            "The folder or zip (with manifest.csv) to read, under the server's import folder.",
        ),
    )

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(params, Mapping) or set(params) - {"path"}:
            raise BackendParamsError('import parameters are {"path": "<folder or zip>"}.')
        path = params.get("path")
        if not isinstance(path, str) or not path:
            raise BackendParamsError('import needs "path": the folder or zip to read.')
        inside_import_root(path)
        return {"path": path}

    def plan(
        self,
        *,
        params: Mapping[str, Any],
        system_name: str,
        prompts: Sequence[tuple[int, str]],
        seeds: range,
    ) -> list[tuple[int, int]]:
        """The (prompt id, seed) items the manifest holds for this system."""
        path = Path(self.validate_params(params)["path"])
        index = _index(str(path), path.stat().st_mtime_ns)
        by_text = {text: pk for pk, text in prompts}
        return sorted(
            (by_text[prompt], seed)
            for (system, prompt, seed) in index
            if system == system_name and prompt in by_text
        )

    def generate(self, request: GenerationRequest) -> GeneratedMedia:
        try:
            path = Path(self.validate_params(request.params)["path"])
        except BackendParamsError as exc:
            raise BackendError(str(exc)) from None
        index = _index(str(path), path.stat().st_mtime_ns)
        member = index.get((request.system_name, request.prompt_text, request.seed))
        if member is None:
            raise BackendError(
                f"the manifest has no row for system {request.system_name!r}, "
                f"this prompt and seed {request.seed}"
            )
        source = ImportSource(path)
        try:
            data = source.read(member)
        finally:
            source.close()
        return GeneratedMedia(data=data, metadata={"backend": self.name, "source_file": member})
