import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "command",
    ["launch_study", "generate_media", "wait_for_generation", "simulate_votes", "import_media"],
)
def test_every_study_command_names_a_missing_study(command: str) -> None:
    args = ["no-such-study"] + (["/nowhere"] if command == "import_media" else [])
    with pytest.raises(CommandError, match="No study with slug 'no-such-study'"):
        call_command(command, *args)
