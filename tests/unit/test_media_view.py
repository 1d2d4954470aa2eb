import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

pytestmark = pytest.mark.django_db
BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def stored() -> str:
    return default_storage.save("a/opaqueid123.png", ContentFile(BODY))


def test_whole_file_has_type_length_and_no_revealing_headers(client: Client, stored: str) -> None:
    response = client.get(f"/media/{stored}")
    assert response.status_code == 200
    assert response.getvalue() == BODY
    assert response["Content-Type"] == "image/png"
    assert response["Accept-Ranges"] == "bytes"
    assert response["X-Content-Type-Options"] == "nosniff"
    for header in ("Last-Modified", "Content-Disposition", "ETag"):
        assert header not in response


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
)
def test_byte_ranges_answer_206(
    client: Client, stored: str, header: str, start: int, end: int
) -> None:
    response = client.get(f"/media/{stored}", HTTP_RANGE=header)
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == BODY[start : end + 1]  # type: ignore[attr-defined]
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(BODY)}"


def test_unsatisfiable_range_is_416(client: Client, stored: str) -> None:
    response = client.get(f"/media/{stored}", HTTP_RANGE="bytes=20000-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(BODY)}"


def test_missing_and_escaping_paths_are_404(client: Client, stored: str) -> None:
    assert client.get("/media/a/nothing.png").status_code == 404
    assert client.get("/media/a/../../settings.py").status_code == 404


def test_directories_and_odd_names_are_404_never_500(client: Client, stored: str) -> None:
    for path in ("/media/a/", "/media/a", "/media/a//", "/media/%00", "/media/a/opaqueid123.png/"):
        assert client.get(path).status_code == 404, path


def test_a_range_is_streamed_not_read_whole(client: Client, stored: str) -> None:
    response = client.get(f"/media/{stored}", HTTP_RANGE="bytes=0-")
    assert response.status_code == 206 and response.streaming
    assert b"".join(response.streaming_content) == BODY  # type: ignore[attr-defined]


def test_behind_nginx_the_bytes_are_left_to_it(client: Client, stored: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ACCEL_PREFIX = "/protected-media/"
    response = client.get(f"/media/{stored}")
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{stored}"
    assert client.get("/media/a/").status_code == 404


def test_a_files_url_is_the_storages_and_signed_urls_are_asked_every_time(settings) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.storage import FileSystemStorage, Storage
    from django.db.models.fields.files import FieldFile

    from studies.models import Asset
    from studies.serializers import file_url

    field = Asset._meta.get_field("file")
    on_disk = FieldFile(Asset(), field, "a/opaque id.png")
    on_disk.storage = FileSystemStorage(base_url="/media/")
    assert file_url(on_disk) == on_disk.storage.url("a/opaque id.png") == "/media/a/opaque%20id.png"
    on_disk.storage = FileSystemStorage(base_url="https://cdn.example/m/")
    assert file_url(on_disk) == "https://cdn.example/m/a/opaque%20id.png"

    class Signed(Storage):
        calls = 0

        def url(self, name: str | None) -> str:
            Signed.calls += 1
            return f"https://bucket.example/{name}?expires={Signed.calls}"

    signed = FieldFile(Asset(), field, "a/x.png")
    signed.storage = Signed()
    assert file_url(signed) != file_url(signed) and Signed.calls == 2
