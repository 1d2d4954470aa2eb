"""docker-compose.yml against the Compose specification's JSON schema (no engine here)."""

import json
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / ".venv" / "vendor"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    wheels = sorted(VENDOR.glob("docker_compose-*.whl"))
    assert wheels, f"no docker_compose wheel in {VENDOR}: run `make test`, which downloads it"
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return json.loads(wheel.read("compose/config/compose_spec.json"))


def test_compose_file_is_valid_against_the_compose_spec(compose: dict, schema: dict) -> None:
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_catches_a_broken_file(schema: dict) -> None:
    broken = {"services": {"web": {"image": "x", "ports": "8000", "depends_on": {"db": {}}}}}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def test_stack_has_the_documented_services(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"db", "redis", "migrate", "web", "worker", "gpu-worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["web"]["command"][0] == "gunicorn"
    worker, gpu = services["worker"]["command"], services["gpu-worker"]["command"]
    assert worker[worker.index("-Q") + 1] == "default"
    assert gpu[gpu.index("-Q") + 1] == "gpu"
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_media_volume_is_shared_by_web_and_workers(compose: dict) -> None:
    services = compose["services"]
    for name in ("web", "worker", "gpu-worker"):
        assert "media:/data" in services[name]["volumes"], name
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["DEBUG"] == "0"
