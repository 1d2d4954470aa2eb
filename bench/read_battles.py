"""Reading vote files: time and peak memory of read_battles, streaming against the old reader.

Writes a FastChat-style battle log (20 models; wins, ties and "tie (bothbad)"; judge,
question_id, language, tstamp and two conversations of a few hundred characters each) as a
JSON array, as JSON Lines and as CSV, then reads each file in a fresh process with today's
read_battles and with the reader of ``--old-ref`` (read_text, json.loads of the whole file,
a dict per record), and prints seconds, peak resident memory (the process's ru_maxrss,
interpreter and numpy included) and the ratios new/old. Both readers must give the same
VoteTable; a mismatch is printed. By default it does so twice: for records with the two
conversations (the reading time is then mostly JSON decoding of text, which both readers
pay) and for the vote fields only (as in LMArena's published clean_battle logs). ``--gzip``
also times the new reader on .gz copies.

Run: .venv/bin/python bench/read_battles.py [--rows 100000] [--shape votes] [--gzip]
"""

import argparse
import csv
import gzip
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The last commit whose reader loaded the whole file (before streaming).
OLD_REF = "9005f31706071ac8f56f5fe001820f32723e171e"
MODELS = [
    f"{family}-{size}"
    for family in ("gpt", "claude", "llama", "mistral", "gemma")
    for size in ("7b", "13b", "70b", "pro")
]
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
TEXT = (
    "the a model answer question data please explain why how code python list function "
    "write story poem summary translate english french table value error example step "
    "first then finally result because however number time user system example test"
)
FIELDS = (
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "turn",
    "anony",
    "language",
    "tstamp",
    "conversation_a",
    "conversation_b",
)


def battles(rows: int, seed: int, *, conversations: bool) -> Iterator[dict[str, Any]]:
    """Battle records in chunks of numpy draws (the texts come from a pool of 4096)."""
    rng = np.random.default_rng(seed)
    words = TEXT.split()

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(words, rng.integers(low, high)).tolist())

    prompts = [text(8, 40) for _ in range(4096)]
    answers = [text(20, 60) for _ in range(4096)]
    chunk = 100_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        a = rng.integers(0, len(MODELS), n)
        b = (a + rng.integers(1, len(MODELS), n)) % len(MODELS)
        winner = rng.choice(4, n, p=[0.35, 0.35, 0.15, 0.15])
        judge = rng.integers(0, 50_000, n)
        prompt, answer_a, answer_b = (rng.integers(0, 4096, n) for _ in range(3))
        ids = rng.integers(0, 2**63, n)
        for k in range(n):
            record = {
                "question_id": f"{ids[k]:016x}{start + k:016x}",
                "model_a": MODELS[a[k]],
                "model_b": MODELS[b[k]],
                "winner": WINNERS[winner[k]],
                "judge": f"arena_user_{judge[k]}",
                "turn": 1,
                "anony": True,
                "language": "English",
                "tstamp": 1_700_000_000 + (start + k) * 3.7,
            }
            if conversations:
                question = prompts[prompt[k]]
                for side, answer in (("a", answer_a[k]), ("b", answer_b[k])):
                    record[f"conversation_{side}"] = [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answers[answer]},
                    ]
            yield record


def write_files(folder: Path, rows: int, seed: int, *, conversations: bool) -> dict[str, Path]:
    folder.mkdir()
    fields = FIELDS if conversations else FIELDS[:-2]
    paths = {kind: folder / f"battles.{kind}" for kind in ("json", "jsonl", "csv")}
    with (
        paths["json"].open("w") as array_file,
        paths["jsonl"].open("w") as lines_file,
        paths["csv"].open("w", newline="") as csv_file,
    ):
        writer = csv.writer(csv_file)
        writer.writerow(fields)
        array_file.write("[")
        for index, record in enumerate(battles(rows, seed, conversations=conversations)):
            line = json.dumps(record)
            array_file.write((",\n" if index else "\n") + line)
            lines_file.write(line + "\n")
            writer.writerow(
                json.dumps(record[f]) if f.startswith("conversation") else record[f] for f in fields
            )
        array_file.write("\n]\n")
    return paths


def gzip_copy(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as source, gzip.open(target, "wb", compresslevel=1) as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    return target


def digest(table: Any) -> str:
    """A hash of everything in a VoteTable, to check that two readers agree."""
    h = hashlib.sha256()
    h.update(repr((table.systems, table.raters, table.position_known)).encode())
    for name in ("first", "second", "outcome", "rater", "unit"):
        h.update(np.ascontiguousarray(getattr(table, name), dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(table.response_ms, dtype=np.float64).tobytes())
    for name, label in sorted(table.labels.items()):
        h.update(repr((name, label.values)).encode())
        h.update(np.ascontiguousarray(label.codes, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def child(reader: str, path: Path) -> None:
    """Read one file in this fresh process; print seconds, peak RSS and the table's hash."""
    if reader == "new":
        from analysis.core.battles import read_battles
    else:
        spec = importlib.util.spec_from_file_location("old_battles", reader)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        read_battles = module.read_battles
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    table = read_battles(path)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "peak_mib": after.ru_maxrss / 1024,
                "start_mib": before.ru_maxrss / 1024,
                "votes": table.n_votes,
                "digest": digest(table),
            }
        )
    )


def measure(reader: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def old_reader(folder: Path, ref: str) -> Path:
    source = subprocess.run(
        ["git", "show", f"{ref}:analysis/core/battles.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "old_battles.py"
    path.write_text(source)
    return path


def report(folder: Path, paths: dict[str, Path], old: str, *, compress: bool) -> float:
    """Print one table; return the peak of a process that only imported the new reader."""
    header = (
        f"{'file':<16} {'MiB':>5} {'old s':>6} {'new s':>6} {'new/old':>7} {'(cpu)':>6}"
        f" {'old MiB':>7} {'new MiB':>7} {'new/old':>7}  same table"
    )
    print(header)
    print("-" * len(header))
    start_mib = 0.0
    for path in paths.values():
        before, after = measure(old, path), measure("new", path)
        start_mib = after["start_mib"]
        print(
            f"{path.name:<16} {path.stat().st_size / 2**20:5.0f} {before['seconds']:6.2f}"
            f" {after['seconds']:6.2f} {after['seconds'] / before['seconds']:7.2f}"
            f" {after['cpu'] / before['cpu']:6.2f} {before['peak_mib']:7.0f}"
            f" {after['peak_mib']:7.0f} {after['peak_mib'] / before['peak_mib']:7.2f}"
            f"  {'yes' if before['digest'] == after['digest'] else 'NO'}",
            flush=True,
        )
        if compress:
            packed = gzip_copy(path)
            zipped = measure("new", packed)
            print(
                f"{packed.name:<16} {packed.stat().st_size / 2**20:5.0f} {'':>6}"
                f" {zipped['seconds']:6.2f} {'':>7} {'':>6} {'':>7} {zipped['peak_mib']:7.0f}"
                f" {'':>7}  {'yes' if zipped['digest'] == before['digest'] else 'NO'}",
                flush=True,
            )
            packed.unlink()
        path.unlink()
    return start_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="battles per file")
    parser.add_argument(
        "--shape",
        choices=["conversations", "votes", "both"],
        default="both",
        help="records with two conversations (about 1.2 kB) or the vote fields only",
    )
    parser.add_argument("--old-ref", default=OLD_REF, help="git revision of the old reader")
    parser.add_argument("--gzip", action="store_true", help="also read .gz copies (new reader)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("READER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    shapes = ["conversations", "votes"] if args.shape == "both" else [args.shape]
    with tempfile.TemporaryDirectory(prefix="read_battles_") as tmp:
        folder = Path(tmp)
        old = str(old_reader(folder, args.old_ref))
        print(f"old reader: {args.old_ref[:12]}; peak: ru_maxrss of the reading process;")
        print("s: wall seconds of read_battles; (cpu): its user + system seconds, new/old")
        start_mib = 0.0
        for shape in shapes:
            start = time.perf_counter()
            paths = write_files(
                folder / shape, args.rows, args.seed, conversations=shape == "conversations"
            )
            size = paths["json"].stat().st_size / args.rows
            print(
                f"\n== {args.rows:,} battles, {shape}: {size:.0f} bytes a record in JSON"
                f" (written in {time.perf_counter() - start:.0f} s; load average"
                f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) ==",
                flush=True,
            )
            start_mib = report(folder, paths, old, compress=args.gzip)
        print(f"\nA process that only imports the reader peaks at about {start_mib:.0f} MiB.")


if __name__ == "__main__":
    main()
