"""``python -m analysis``: leaderboards, agreement, simulations and metric correlations
from vote files, and real-or-generated results from judgment files.

Runs without a database or Django settings.
"""

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.core.battles import BattleFileError, read_battles
from analysis.core.bt import BOTH_BAD, DEFAULT_L2, ELO_PER_UNIT, TIES
from analysis.core.correlation import MetricComparison, compare_metric, human_replicates
from analysis.core.leaderboard import leaderboard, rater_agreement
from analysis.core.metric_files import read_metrics
from analysis.core.quality import exclude_flagged, rater_quality
from analysis.core.realness import ANSWERS, Proportion, Realness, realness
from analysis.core.results import (
    DEFAULT_OPTIONS,
    INTERVALS,
    Leaderboard,
    LeaderboardOptions,
    Notice,
    SystemRow,
    to_elo,
)
from analysis.core.serialize import to_json
from analysis.core.simulate import RaterPanel, simulate_votes, votes_to_separate
from analysis.core.types import FloatArray, Outcome
from analysis.core.votes import VoteTable


def _fmt(value: float | None, digits: int = 0) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = [
        "  ".join(
            c.rjust(w) if i != 1 else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def _print_json(data: Any) -> int:
    json.dump(to_json(data), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _load(args: argparse.Namespace) -> VoteTable:
    return read_battles(args.file, a_is_left=args.a_is_left, criterion=args.criterion)


def _exclusions(votes: VoteTable, args: argparse.Namespace) -> tuple[VoteTable, Notice | None]:
    if not args.exclude_flagged:
        return votes, None
    result = exclude_flagged(votes, rater_quality(votes))
    return result.votes, Notice(
        "exclusions",
        f"Excluded {result.excluded_votes} votes of {result.excluded_raters} flagged raters.",
    )


def _bounds(row: SystemRow) -> str:
    low = "−∞" if row.elo_low is None else _fmt(row.elo_low)
    high = "+∞" if row.elo_high is None else _fmt(row.elo_high)
    return "—" if row.elo is None else f"{low} – {high}"


def _rank_range(row: SystemRow) -> str:
    return "—" if row.rank_low is None else f"{row.rank_low}–{row.rank_high}"


def _print_board(board: Leaderboard, level: float, extra: Sequence[Notice] = ()) -> None:
    several = len([c for c in board.components if c.votes]) > 1
    rows = [
        [
            str(r.rank) if r.rank is not None else "—",
            r.system + (" *" if r.preliminary else ""),
            _fmt(r.elo, 1),
            _bounds(r),
            _rank_range(r),
            str(r.votes),
            _fmt(100 * r.win_rate, 1) if r.win_rate is not None else "—",
            _fmt(100 * r.both_bad_rate, 1) if r.both_bad_rate is not None else "—",
            *([str(r.component + 1)] if several else []),
            ", ".join(f for f in r.flags if f != "preliminary"),
        ]
        for r in board.rows
    ]
    headers = [
        "rank",
        "system",
        "elo",
        f"{round(100 * level)}% interval",
        "rank range",
        "votes",
        "win %",
        "both bad %",
        *(["group"] if several else []),
        "flags",
    ]
    print(_table(headers, rows))
    raters = f"{board.n_raters} rater{'s' if board.n_raters != 1 else ''}"
    if board.effective_raters is not None:
        raters += f" ({board.effective_raters:.1f} effective)"
    print(
        f"\n{board.n_votes} votes, {raters}; intervals: {board.uncertainty.description}."
        + (
            f" * preliminary: fewer than {board.options.min_votes} votes."
            if any(r.preliminary for r in board.rows)
            else ""
        )
    )
    if board.tie_strength is not None:
        print(f"Tie strength (Davidson ν): {board.tie_strength:.3f}")
    position = board.position
    if position and position.left_share is not None:
        effect = position.effect
        print(
            f"Left chosen in {100 * position.left_share:.1f}% of decisive votes "
            f"({100 * (position.left_share_low or 0):.1f}–"
            f"{100 * (position.left_share_high or 0):.1f}%)"
            + (f"; left-position effect {effect:+.3f} log-odds" if effect is not None else "")
        )
    for notice in (*board.notices, *extra):
        print(f"Note: {notice.message}")


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    votes, exclusion = _exclusions(_load(args), args)
    options = LeaderboardOptions(
        ties=args.ties,
        both_bad=args.both_bad,
        l2=args.l2,
        interval=args.interval,
        replicates=args.replicates,
        level=args.level,
        anchor=args.anchor,
        seed=args.seed,
        min_votes=args.min_votes,
        min_effective_raters=args.min_raters,
    )
    board = leaderboard(votes, options)
    extra = (exclusion,) if exclusion else ()
    if args.json:
        return _print_json({"leaderboard": board, "notes": extra})
    _print_board(board, args.level, extra)
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    votes = _load(args)
    if not (votes.unit >= 0).any():
        raise BattleFileError(
            f"{args.file}: agreement needs an item column (item, question_id or prompt)"
        )
    if not (votes.rater >= 0).any():
        raise BattleFileError(f"{args.file}: agreement needs a rater column (rater or judge)")
    result = rater_agreement(votes, splits=args.splits, seed=args.seed)
    flagged = [q for q in rater_quality(votes) if q.flags]
    if args.json:
        return _print_json(
            {
                "agreement": result,
                "flagged_raters": [
                    {**q.as_dict(), "rater": votes.raters[q.rater]} for q in flagged
                ],
            }
        )
    for name in ("krippendorff_alpha", "fleiss_kappa", "percent_agreement"):
        a = getattr(result, name)
        value = _fmt(a.value, 3) if a.defined else f"undefined ({a.reason})"
        print(f"{name.replace('_', ' '):20} {value}   ({a.n_units} units, {a.n_ratings} ratings)")
    if result.split_half and result.split_half.splits:
        s = result.split_half
        print(
            f"{'split-half':20} {s.reliability:.3f} ({s.low:.3f}–{s.high:.3f}), "
            f"Spearman–Brown over {s.splits} splits"
        )
    print(
        f"{len(flagged)} flagged rater(s)"
        + (
            ": " + ", ".join(f"{votes.raters[q.rater]} ({'/'.join(q.flags)})" for q in flagged)
            if flagged
            else ""
        )
    )
    return 0


_COEFFICIENT_NAMES = {
    "kendall_tau_b": "Kendall tau-b",
    "spearman": "Spearman rho",
    "pearson": "Pearson r",
}


def _print_comparison(result: MetricComparison) -> None:
    c = result.correlation
    direction = "lower is better" if c.lower_is_better else "higher is better"
    print(
        f"{c.metric} ({direction}) against the Bradley–Terry scores"
        + (f" of criterion {c.criterion!r}" if c.criterion else "")
        + f", {len(c.systems)} systems"
    )
    level = f"{round(100 * c.level)}% interval"
    rows = [
        [
            _COEFFICIENT_NAMES[k.name],
            _fmt(k.value, 3),
            "—" if k.low is None else f"{_fmt(k.low, 3)} – {_fmt(k.high, 3)}",
            _fmt(k.p_value, 3),
            _fmt(k.min_p_value, 3),
        ]
        for k in c.coefficients
    ]
    print(_table(["coefficient", "value", level, "p", "smallest p possible"], rows))
    print(f"Intervals: {c.interval}. p: two-sided, {c.p_method}.")
    if result.disagreements:
        print(f"People and {c.metric} disagree on {len(result.disagreements)} pair(s):")
    for d in result.disagreements:
        gap = (
            f" [{_fmt(d.human_gap_low, 2)}, {_fmt(d.human_gap_high, 2)}]"
            if d.human_gap_low is not None
            else ""
        )
        print(
            f"  people prefer {d.preferred} to {d.other} (score gap {d.human_gap:.2f}{gap}; "
            f"{d.preferred_wins}–{d.other_wins} with {d.ties} ties in {d.votes} votes), "
            f"{c.metric} says otherwise ({d.metric_preferred:g} vs {d.metric_other:g})"
        )
    if not result.disagreements and c.systems:
        print(f"No pair that people order significantly does {c.metric} order the other way.")
    for note in c.notes:
        print(f"Note: {note}")


def _cmd_correlate(args: argparse.Namespace) -> int:
    metrics = read_metrics(args.metrics)
    votes = _load(args)
    options = LeaderboardOptions(
        interval=args.interval, replicates=args.replicates, level=args.level, seed=args.seed
    )
    board = leaderboard(votes, options)
    replicates = human_replicates(votes, board)
    if not any(set(m.values) & set(votes.systems) for m in metrics):
        raise BattleFileError(
            f"{args.metrics}: none of its systems has votes in {args.file} "
            f"(systems there: {', '.join(votes.systems)})"
        )
    results = []
    notes = []
    for metric in metrics:
        unknown = sorted(set(metric.values) - set(votes.systems))
        if unknown:
            notes.append(
                Notice(
                    "unknown_systems",
                    f"{metric.name}: no votes for {', '.join(unknown)}; left out.",
                )
            )
        results.append(
            compare_metric(
                votes,
                board,
                metric.values,
                name=metric.name,
                lower_is_better=metric.lower_is_better,
                criterion=args.criterion,
                replicates=replicates,
            )
        )
    if args.json:
        return _print_json({"leaderboard": board, "metrics": results, "notes": notes})
    for k, result in enumerate(results):
        if k:
            print()
        _print_comparison(result)
    for notice in (*notes, *board.notices):
        print(f"Note: {notice.message}")
    return 0


JUDGMENT_COLUMNS = ("rater", "source", "answer")


def _read_judgments(path: Path) -> dict[str, list[str]]:
    """The columns of a real-or-generated CSV: rater, source, answer[, exposure_ms]."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [c for c in JUDGMENT_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{path}: needs columns {', '.join(JUDGMENT_COLUMNS)} (missing "
                f"{', '.join(missing)}; found {', '.join(header) or 'none'})"
            )
        columns: dict[str, list[str]] = {name: [] for name in header}
        for line, row in enumerate(reader, start=2):
            for name, raw in zip(header, row.values(), strict=False):
                value = (raw or "").strip()
                if name == "answer":
                    value = value.lower()
                    if value not in ANSWERS:
                        raise ValueError(
                            f"{path}, line {line}: answer must be real or generated, not {raw!r}"
                        )
                columns[name].append(value)
    return columns


def _exposures(path: Path, cells: list[str]) -> FloatArray:
    """Exposure cells in ms; an empty cell (or "inf") is an unlimited exposure."""
    try:
        return np.array([float(c) if c else math.inf for c in cells], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: exposure_ms must be a number of ms ({exc})") from exc


def _share(part: Proportion) -> str:
    if part.value is None:
        return "—"
    value = f"{100 * part.value:.1f}"
    if part.low is None or part.high is None:
        return value
    return f"{value} ({100 * part.low:.1f}–{100 * part.high:.1f})"


def _print_realness(result: Realness, *, raters: bool) -> None:
    level = f"{round(100 * result.level)}%"
    rows = [
        [
            str(s.raters),
            s.system,
            str(s.fooled.judgments),
            _share(s.fooled),
            _share(s.hype_infinity),
            _fmt(s.detection.d_prime, 2),
            _fmt(s.detection.criterion, 2),
        ]
        for s in result.systems
    ]
    headers = [
        "raters",
        "system",
        "images",
        f"fooled % ({level})",
        f"HYPE∞ % ({level})",
        "d′",
        "c",
    ]
    print(_table(headers, rows))
    for s in result.systems:
        for e in s.by_exposure:
            at = "unlimited" if e.exposure_ms is None else f"{e.exposure_ms:g} ms"
            print(f"  {s.system} at {at}: fooled {_share(e.fooled)} of {e.fooled.judgments}")
    print(
        f"\n{result.n_judgments} judgments ({result.real_judgments} of real images) by "
        f"{result.n_raters} rater{'s' if result.n_raters != 1 else ''}; intervals: "
        f"{result.interval_method}. Fooled: generated images judged real; HYPE∞: real and "
        "generated images misjudged, pooled over the system's raters; d′ and c with the "
        "log-linear correction."
    )
    if raters:
        print()
        rater_rows = [
            [
                str(r.judgments),
                r.rater,
                _fmt(None if r.fooled_rate is None else 100 * r.fooled_rate, 1),
                _fmt(None if r.error_rate is None else 100 * r.error_rate, 1),
                _fmt(r.detection.d_prime, 2),
                _fmt(r.detection.criterion, 2),
                ", ".join(r.flags),
            ]
            for r in result.raters
        ]
        print(_table(["images", "rater", "fooled %", "error %", "d′", "c", "flags"], rater_rows))
    for s in result.systems:
        reasons = dict.fromkeys(
            reason
            for reason in (
                s.reason,
                s.fooled.reason,
                s.hype_infinity.reason,
                s.detection.reason,
            )
            if reason
        )
        for reason in reasons:
            print(f"Note: {s.system}: {reason}.")
    for note in result.notes:
        print(f"Note: {note}")


def _cmd_realness(args: argparse.Namespace) -> int:
    path = Path(args.file)
    columns = _read_judgments(path)
    exposure = _exposures(path, columns["exposure_ms"]) if "exposure_ms" in columns else None
    result = realness(
        columns["rater"],
        columns["source"],
        columns["answer"],
        exposure_ms=exposure,
        real_source=args.real_source,
        level=args.level,
    )
    if args.json:
        return _print_json({"realness": result})
    _print_realness(result, raters=args.raters)
    return 0


def _strengths(args: argparse.Namespace) -> FloatArray:
    if args.elo:
        elo = np.array([float(x) for x in args.elo.split(",")])
    else:
        elo = 1000 + args.gap * (np.arange(args.systems)[::-1] - (args.systems - 1) / 2)
    return np.asarray((elo - elo.mean()) / ELO_PER_UNIT, dtype=np.float64)


def _write_votes(path: Path, votes: VoteTable) -> None:
    names = {
        Outcome.FIRST: "model_a",
        Outcome.SECOND: "model_b",
        Outcome.TIE: "tie",
        Outcome.BOTH_BAD: "tie (bothbad)",
    }
    source = votes.labels.get("source")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["model_a", "model_b", "winner", "rater", "left", "item", "response_ms", "source"]
        )
        for k in range(votes.n_votes):
            writer.writerow(
                [
                    votes.systems[votes.first[k]],
                    votes.systems[votes.second[k]],
                    names[Outcome(int(votes.outcome[k]))],
                    votes.raters[votes.rater[k]],
                    "model_a",
                    int(votes.unit[k]),
                    round(float(votes.response_ms[k])),
                    source.values[source.codes[k]] if source else "",
                ]
            )


def _cmd_simulate(args: argparse.Namespace) -> int:
    theta = _strengths(args)
    if args.power:
        analysis = votes_to_separate(
            theta,
            votes_per_rater=args.votes_per_rater,
            noise=args.noise,
            tie_strength=args.ties,
            target=args.target,
            simulations=args.simulations,
            rng=args.seed,
        )
        curve: list[dict[str, Any]] = [
            {"votes": p.votes, "power": p.power, "adjacent": list(p.per_pair)}
            for p in analysis.curve
        ]
        if args.json:
            return _print_json(
                {"votes_needed": analysis.votes_needed, "target": analysis.target, "curve": curve}
            )
        print(
            _table(
                ["votes", "power", "per adjacent pair"],
                [
                    [
                        str(c["votes"]),
                        f"{c['power']:.2f}",
                        " ".join(f"{p:.2f}" for p in c["adjacent"]),
                    ]
                    for c in curve
                ],
            )
        )
        needed = analysis.votes_needed
        print(
            "\nVotes to separate every adjacent pair at 95% in "
            f"{round(100 * args.target)}% of studies: "
            + (str(needed) if needed else "not reached within 1,000,000")
        )
        return 0
    panel = RaterPanel(
        n_raters=args.raters,
        votes_per_rater=args.votes_per_rater,
        noise=args.noise,
        position_bias=args.position_bias,
        spammer_share=args.spammers,
        tie_strength=args.ties,
        both_bad_share=args.both_bad,
    )
    sim = simulate_votes(theta, panel, rng=args.seed)
    if args.out:
        _write_votes(Path(args.out), sim.votes)
        print(f"Wrote {sim.votes.n_votes} simulated votes to {args.out}.")
        return 0
    board = leaderboard(sim.votes, LeaderboardOptions(seed=args.seed))
    truth = dict(zip(sim.votes.systems, [to_elo(x) for x in sim.truth], strict=True))
    if args.json:
        return _print_json({"leaderboard": board, "true_elo": truth})
    rows = [
        [str(r.rank), r.system, _fmt(truth[r.system], 1), _fmt(r.elo, 1), _bounds(r)]
        for r in board.rows
    ]
    print(_table(["rank", "system", "true elo", "elo", "95% interval"], rows))
    print(
        f"\n{board.n_votes} simulated votes from {args.raters} raters "
        f"({int(sim.spammer.sum())} spammers)."
    )
    for notice in board.notices:
        print(f"Note: {notice.message}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def vote_file(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "file",
            help="votes: .csv (commas, semicolons or tabs), .tsv, .jsonl or .json "
            "(LMArena/FastChat battle log), each optionally .gz",
        )
        p.add_argument("--criterion", help="only the votes of this criterion")
        p.add_argument(
            "--a-is-left", action="store_true", help="model_a was always shown on the left"
        )
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    board = commands.add_parser("leaderboard", help="Bradley–Terry leaderboard with intervals")
    vote_file(board)
    board.add_argument(
        "--ties", choices=TIES, default="davidson", help="tie model (default davidson)"
    )
    board.add_argument(
        "--both-bad", choices=BOTH_BAD, default="tie", help="'both bad' as a tie or dropped"
    )
    board.add_argument(
        "--l2", type=float, default=DEFAULT_L2, help=f"prior precision (default {DEFAULT_L2})"
    )
    board.add_argument(
        "--interval",
        choices=INTERVALS,
        default="auto",
        help="auto: cluster-robust by rater when there are enough raters, else by vote",
    )
    board.add_argument(
        "--min-votes",
        type=int,
        default=DEFAULT_OPTIONS.min_votes,
        help=f"mark systems with fewer votes preliminary (default {DEFAULT_OPTIONS.min_votes})",
    )
    board.add_argument(
        "--min-raters",
        type=float,
        default=DEFAULT_OPTIONS.min_effective_raters,
        help="effective raters (Kish) below which intervals treat votes as independent "
        f"(default {DEFAULT_OPTIONS.min_effective_raters:g})",
    )
    board.add_argument(
        "--replicates", type=int, default=1000, help="bootstrap replicates (default 1000)"
    )
    board.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    board.add_argument("--anchor", help="system placed at 1000 Elo (default: the mean)")
    board.add_argument(
        "--exclude-flagged", action="store_true", help="leave out raters with quality flags"
    )
    board.set_defaults(run=_cmd_leaderboard)

    agree = commands.add_parser("agreement", help="inter-rater agreement and rater quality")
    vote_file(agree)
    agree.add_argument(
        "--splits", type=int, default=50, help="random rater splits for split-half (default 50)"
    )
    agree.set_defaults(run=_cmd_agreement)

    corr = commands.add_parser(
        "correlate",
        help="an automated metric (FID, ...) against the human ranking, and where they disagree",
        description="Kendall tau-b, Spearman and Pearson between each metric and the "
        "Bradley–Terry scores, metrics oriented so that higher is better, with bootstrap "
        "intervals (votes resampled by rater or by vote, as the leaderboard's intervals) and "
        "exact permutation p-values; and every pair of systems people order significantly "
        "while the metric orders them the other way. Per-system values only: vote files carry "
        "no asset ids, so per-asset measures (rows with an asset) are refused.",
    )
    vote_file(corr)
    corr.add_argument(
        "metrics",
        help="CSV with columns system,metric,value,lower_is_better[,n]: one row per system "
        "and metric (lower_is_better: true/false)",
    )
    corr.add_argument(
        "--interval",
        choices=INTERVALS,
        default="auto",
        help="how the leaderboard's intervals (and so the significant pairs) are made",
    )
    corr.add_argument(
        "--replicates", type=int, default=1000, help="bootstrap replicates (default 1000)"
    )
    corr.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    corr.set_defaults(run=_cmd_correlate)

    real = commands.add_parser(
        "realness",
        help="real-or-generated judgments: how often each system's images pass for real",
        description="Per system: the share of its generated images judged real (fooled), "
        "HYPE∞ (real and generated images misjudged, pooled), and signal-detection d′ and c, "
        "with intervals clustered by rater. The CSV has columns rater, source (the system, or "
        "the real source for real images), answer (real or generated) and optionally "
        "exposure_ms (empty: unlimited).",
    )
    real.add_argument("file", help="judgments CSV: rater,source,answer[,exposure_ms]")
    real.add_argument(
        "--real-source", default="real", help="the source of real images (default 'real')"
    )
    real.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    real.add_argument("--raters", action="store_true", help="also print a row per rater")
    real.add_argument("--json", action="store_true", help="print JSON instead of a table")
    real.set_defaults(run=_cmd_realness)

    sim = commands.add_parser("simulate", help="simulate votes with known truth, or plan a study")
    sim.add_argument("--systems", type=int, default=5)
    sim.add_argument(
        "--gap", type=float, default=50.0, help="Elo between adjacent systems (default 50)"
    )
    sim.add_argument("--elo", help="comma-separated true Elo scores (instead of --systems/--gap)")
    sim.add_argument("--raters", type=int, default=40)
    sim.add_argument("--votes-per-rater", type=int, default=25)
    sim.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="each rater's own shift of the scores (sd, log units)",
    )
    sim.add_argument(
        "--position-bias", type=float, default=0.0, help="log-odds given to the left side"
    )
    sim.add_argument(
        "--spammers", type=float, default=0.0, help="share of raters answering at random"
    )
    sim.add_argument("--ties", type=float, default=0.0, help="Davidson tie strength ν")
    sim.add_argument(
        "--both-bad", type=float, default=0.0, help="share of ties given as 'both bad'"
    )
    sim.add_argument("--out", help="write the votes to this CSV instead of fitting them")
    sim.add_argument(
        "--power", action="store_true", help="how many votes separate adjacent systems"
    )
    sim.add_argument("--target", type=float, default=0.8, help="power wanted (default 0.8)")
    sim.add_argument(
        "--simulations", type=int, default=100, help="simulated studies per vote count"
    )
    sim.add_argument("--json", action="store_true")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(run=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (BattleFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
