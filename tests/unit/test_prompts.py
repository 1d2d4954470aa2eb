import pytest

from studies.exceptions import InvalidTransition, PromptImportError
from studies.prompts import import_prompts, parse_prompt_file
from tests.factories import make_prompt, make_study

pytestmark = pytest.mark.django_db


def test_csv_with_categories_is_imported_and_existing_texts_left_alone() -> None:
    study = make_study()
    make_prompt(study, text="a red circle", category="old")
    content = (
        'text,category\na red circle,objects\na blue square,objects\n"a cat, sitting",animals\n'
    )
    rows = parse_prompt_file(name="prompts.CSV", content=content.encode())
    result = import_prompts(study=study, rows=rows)
    assert (result.created, result.already_there) == (2, 1)
    assert sorted(study.prompts.values_list("text", "category")) == [
        ("a blue square", "objects"),
        ("a cat, sitting", "animals"),
        ("a red circle", "old"),
    ]


def test_text_file_takes_one_prompt_a_line_with_the_default_category() -> None:
    study = make_study()
    content = b"# my prompts\n\na dog\n  a horse  \na dog\n"
    rows = parse_prompt_file(name="p.txt", content=content, default_category="animals")
    result = import_prompts(study=study, rows=rows)
    assert (result.created, result.already_there) == (2, 1)
    assert set(study.prompts.values_list("text", "category")) == {
        ("a dog", "animals"),
        ("a horse", "animals"),
    }


def test_bad_lines_are_named_and_nothing_is_imported() -> None:
    content = ("text,category\nfine,x\n,x\n" + "y" * 2001 + ",x\n").encode()
    with pytest.raises(PromptImportError) as caught:
        parse_prompt_file(name="p.csv", content=content)
    assert caught.value.problems == [
        "line 3: the text is empty",
        "line 4: the text is over 2000 characters",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.csv", b"prompt_text,category\nx,y\n", "no 'text' column"),
        ("p.txt", b"\xff\xfe\x00bad", "not UTF-8"),
        ("p.txt", b"\n# only a comment\n", "holds no prompts"),
    ],
)
def test_unusable_files_are_refused(name: str, content: bytes, message: str) -> None:
    with pytest.raises(PromptImportError, match=message):
        parse_prompt_file(name=name, content=content)


def test_prompts_cannot_be_added_to_a_live_study() -> None:
    study = make_study(status="live")
    rows = parse_prompt_file(name="p.txt", content=b"a new prompt\n")
    with pytest.raises(InvalidTransition, match="only before launch"):
        import_prompts(study=study, rows=rows)
    assert not study.prompts.exists()
