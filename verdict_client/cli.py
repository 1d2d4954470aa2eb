"""``verdict``: drive a Verdict study from a CI job, through the researcher API only.

The server and token come from ``--url`` / ``--token`` or VERDICT_URL / VERDICT_TOKEN.
Every command prints a line for people, or with ``--json`` the API's answer. Exit codes
a pipeline can branch on, never one for another:

- 0: done (``gate``: the candidate passes);
- 1: ``gate``: the candidate fails;
- 2: ``gate``: the data cannot decide yet (or the report is still being built);
- 3: ``wait`` (or ``report``) ran out of time;
- 4: the server could not be reached, or answered 5xx;
- 5: refused: bad usage, a bad file, or the server's 4xx (its message on stderr).
"""

import argparse
import csv
import io
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

OK, FAIL, UNDECIDED, TIMED_OUT, UNREACHABLE, REFUSED = 0, 1, 2, 3, 4, 5


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        kind: str = "",
        query: Any = None,
    ) -> tuple[int, bytes]:
        url = f"{self.url}/api/v1/{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if kind:
            request.add_header("Content-Type", kind)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            raise ApiError(exc.code, _message(text) or exc.reason) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(0, f"cannot reach {self.url}: {exc}") from None

    def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, raw = self.call(method, path, **kwargs)
        return status, json.loads(raw or b"null")


def _message(text: str) -> str:
    """The API's error in a line: its detail, or each field's problems."""
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        if "detail" in data:
            return str(data["detail"])
        if "problems" in data:
            return "; ".join(str(p) for p in data["problems"])
        return "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in data.items())
    return text[:300]


def _inline_prompts(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A study file's ``prompts_file`` read here and sent inline (the server cannot read
    the CI job's files): CSV with text and category columns, or one prompt a line."""
    name = data.pop("prompts_file", None)
    if name is None:
        return data
    text = (base / name).read_text(encoding="utf-8-sig")
    if str(name).lower().endswith(".csv"):
        rows = [
            {"text": (r.get("text") or "").strip(), "category": (r.get("category") or "").strip()}
            for r in csv.DictReader(io.StringIO(text))
        ]
    else:
        lines = (line.strip() for line in text.splitlines())
        rows = [{"text": line} for line in lines if line and not line.startswith("#")]
    data["prompts"] = [*data.get("prompts", []), *rows]
    return data


def _multipart(field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{path.name}"\r\nContent-Type: application/zip\r\n\r\n'
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def _reached(state: dict[str, Any], until: str) -> bool:
    if until == "media":
        return (
            bool(state["media"]["expected"])
            and state["media"]["made"] >= state["media"]["expected"]
        )
    if until == "votes":
        return (
            bool(state["votes"]["target"]) and state["votes"]["current"] >= state["votes"]["target"]
        )
    if until == "settled":
        return bool(state["criteria"]) and len(state["settled_criteria"]) == len(state["criteria"])
    return state["status"] == until


def _once_built(
    api: Api, path: str, query: dict[str, Any], args: argparse.Namespace
) -> tuple[int, Any]:
    """GET an answer that reads the stored report: while its first build runs (202), ask
    again every ``--interval`` seconds until ``--timeout``."""
    deadline = time.monotonic() + args.timeout
    while True:
        status, body = api.json("GET", path, query=query)
        if status != 202 or time.monotonic() >= deadline:
            return status, body
        time.sleep(args.interval)


def run(args: argparse.Namespace, api: Api, out: Any) -> int:
    def show(data: Any, line: str) -> None:
        print(json.dumps(data, indent=2, default=str) if args.json else line, file=out)

    if args.command == "apply":
        path = Path(args.file)
        data = _inline_prompts(yaml.safe_load(path.read_text(encoding="utf-8")), path.parent)
        status, body = api.json(
            "POST",
            "studies",
            body=json.dumps(data).encode(),
            kind="application/json",
            query={"dry_run": "1" if args.dry_run else None},
        )
        changes = "; ".join(body["changes"]) or "no changes"
        dry = " (dry run: nothing written)" if args.dry_run else ""
        show(body, f"{data.get('slug')}: {changes}{dry}")
    elif args.command == "status":
        _, body = api.json("GET", f"studies/{args.study}")
        show(
            body,
            f"{body['slug']}: {body['status']}; media {body['media']['made']}/"
            f"{body['media']['expected']}; votes {body['votes']['current']}/"
            f"{body['votes']['target']}; settled {len(body['settled_criteria'])}/"
            f"{len(body['criteria'])} criteria",
        )
    elif args.command == "upload":
        payload, kind = _multipart("archive", Path(args.zip))
        _, body = api.json("POST", f"studies/{args.study}/media", body=payload, kind=kind)
        show(body, f"import job {body['job']}: {body['expected']} file(s) queued")
    elif args.command == "generate":
        _, body = api.json("POST", f"studies/{args.study}/generate")
        show(body, f"generation job {body['job']}: {body['expected']} item(s) queued")
    elif args.command in ("launch", "pilot", "pause", "close"):
        _, body = api.json("POST", f"studies/{args.study}/{args.command}")
        show(body, f"{body['slug']}: {body['status']}")
    elif args.command == "wait":
        deadline = time.monotonic() + args.timeout
        while True:
            _, body = api.json("GET", f"studies/{args.study}")
            if _reached(body, args.until):
                show(body, f"{args.study}: {args.until} reached")
                return OK
            if time.monotonic() >= deadline:
                show(body, f"{args.study}: {args.until} not reached in {args.timeout:g} s")
                return TIMED_OUT
            time.sleep(args.interval)
    elif args.command == "report":
        query = {"criterion": args.criterion}
        if args.format == "csv":
            _, raw = api.call("GET", f"studies/{args.study}/votes.csv", query=query)
            out.write(raw.decode())
            return OK
        status, body = _once_built(api, f"studies/{args.study}/report", query, args)
        if status == 202:
            print(f"{args.study}: the report is still being built", file=sys.stderr)
            return TIMED_OUT
        print(json.dumps(body, indent=2), file=out)
    elif args.command == "gate":
        mode = "better" if args.better else ("non_inferior" if args.margin else "not_worse")
        query = {
            "candidate": args.candidate,
            "baseline": args.baseline,
            "criterion": args.criterion,
            "mode": mode,
            "margin": args.margin or None,
        }
        status, body = _once_built(api, f"studies/{args.study}/gate", query, args)
        if status == 202:
            show(body, f"{args.study}: the report is still being built; cannot decide yet")
            return UNDECIDED
        stale = f" (the report is {body['new_votes_since']} votes behind)" if body["stale"] else ""
        show(body, f"{body['verdict']}: {body['reason']}{stale}")
        return int(body["code"])
    return OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="verdict",
        description="Drive a Verdict study from a CI job, through the researcher API.",
        epilog="Exit codes: 0 done or gate passes, 1 gate fails, 2 gate undecided, 3 timed "
        "out, 4 server unreachable or 5xx, 5 refused (bad usage, bad file, 4xx).",
    )
    top.add_argument("--url", default=os.environ.get("VERDICT_URL", "http://127.0.0.1:8000"))
    top.add_argument("--token", default=os.environ.get("VERDICT_TOKEN", ""))
    top.add_argument("--json", action="store_true", help="Print the API's answer as JSON.")
    commands = top.add_subparsers(dest="command", required=True)
    apply = commands.add_parser("apply", help="Apply a study file (YAML).")
    apply.add_argument("file")
    apply.add_argument("--dry-run", action="store_true")
    for name, text in (
        ("status", "Where the study stands."),
        ("generate", "Generate missing media."),
        ("launch", "Launch the study."),
        ("pilot", "Launch a pilot."),
        ("pause", "Pause the study."),
        ("close", "Close the study."),
    ):
        commands.add_parser(name, help=text).add_argument("study")
    upload = commands.add_parser("upload", help="Upload a zip of outputs with manifest.csv.")
    upload.add_argument("study")
    upload.add_argument("zip")
    wait = commands.add_parser("wait", help="Wait until media, votes or settled (exit 3 if not).")
    wait.add_argument("study")
    wait.add_argument("--until", choices=["media", "votes", "settled", "live", "closed"],
                      required=True)  # fmt: skip
    report = commands.add_parser("report", help="The stored report (JSON) or the votes (CSV).")
    report.add_argument("study")
    report.add_argument("--format", choices=["json", "csv"], default="json")
    report.add_argument("--criterion")
    gate = commands.add_parser("gate", help="Exit 0 pass, 1 fail, 2 undecided.")
    gate.add_argument("--study", required=True)
    gate.add_argument("--candidate", required=True)
    gate.add_argument("--baseline", required=True)
    gate.add_argument("--criterion")
    gate.add_argument("--margin", type=float, default=0.0, help="Non-inferiority margin (Elo).")
    gate.add_argument("--better", action="store_true", help="Require significantly better.")
    for command in (wait, report, gate):
        command.add_argument("--timeout", type=float, default=600.0, help="Seconds (default 600).")
        command.add_argument("--interval", type=float, default=5.0, help="Seconds between polls.")
    return top


def main(argv: Sequence[str] | None = None, out: Any = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse's 2 would read as "undecided"
        return OK if exc.code == 0 else REFUSED
    out = out or sys.stdout
    if not args.token:
        print("verdict: set VERDICT_TOKEN or --token (made in the admin).", file=sys.stderr)
        return REFUSED
    try:
        return run(args, Api(args.url, args.token), out)
    except BrokenPipeError:  # the reader (e.g. head) closed the pipe: nothing to say
        return OK
    except ApiError as exc:
        print(f"verdict {args.command}: {exc}", file=sys.stderr)
        return UNREACHABLE if exc.status == 0 or exc.status >= 500 else REFUSED
    except (OSError, yaml.YAMLError, ValueError, KeyError) as exc:
        print(f"verdict {args.command}: {exc}", file=sys.stderr)
        return REFUSED


if __name__ == "__main__":
    raise SystemExit(main())
