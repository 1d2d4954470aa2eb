#!/usr/bin/env bash
# make demo: migrate the embedded SQLite database, seed the demo study, generate its media
# through a real Celery worker (file broker), launch it, add simulated raters' votes, and
# serve on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
ADDR=${VERDICT_DEMO_ADDR:-127.0.0.1:8000}

$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo

mkdir -p var
.venv/bin/celery -A config worker -Q default,gpu -P solo --loglevel=WARNING >var/demo-worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT
echo "Celery worker started (pid $worker, log var/demo-worker.log); generating media..."
$PY manage.py wait_for_generation demo-shapes --timeout 600
$PY manage.py wait_for_generation demo-clips --timeout 600
$PY manage.py wait_for_generation demo-real --timeout 600
$PY manage.py seed_demo --known-pairs
$PY manage.py launch_study demo-shapes
# Simulated raters (marked as such; the leaderboard can leave them out) fill the leaderboard.
$PY manage.py simulate_votes demo-shapes --raters 24 --seed 1 --if-fewer-than 1 \
  --strength "Pristine=1.2" --strength "Soft focus=0.5" --strength "Grainy=-0.4" --strength "Off-prompt=-1.3"

$PY manage.py launch_study demo-clips
$PY manage.py simulate_votes demo-clips --raters 16 --seed 2 --if-fewer-than 1 \
  --strength "Steady=1.0" --strength "Stutter=0.3" --strength "Flicker=-0.3" --strength "Smear=-1.0"

# Real or generated: how real each set looks to the simulated raters (logit of "real").
$PY manage.py launch_study demo-real
$PY manage.py simulate_votes demo-real --raters 30 --seed 3 --if-fewer-than 1 \
  --strength "Clean renders=1.5" --strength "Off-prompt=1.0" --strength "Soft focus=0.2" \
  --strength "Grainy=-1.5"

# Automated metrics beside people: per-asset measures, and set metrics with the weight-free
# extractor against a reference set of clean renders (no weights are downloaded).
$PY manage.py compute_metrics demo-shapes --measures --demo-reference --set-metrics random-cnn
$PY manage.py compute_metrics demo-real --demo-reference --set-metrics random-cnn

# The leaderboard reads stored reports: build them now (later votes rebuild them in the worker).
$PY manage.py build_report demo-shapes
$PY manage.py build_report demo-clips
$PY manage.py build_report demo-real

$PY manage.py seed_demo --links-only --base-url "http://$ADDR"
$PY manage.py runserver "$ADDR" --noreload
