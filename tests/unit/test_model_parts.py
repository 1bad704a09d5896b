"""Model files served in parts (a static site: hosts limit the size of one file): the cache fetches the
parts, joins them, checks the whole and names the part that is wrong; the manifest's part lists."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.fake_store import BASE, FILES, FakeStore, manifest, parted

from hybrid_router.errors import ModelLoadError, ValidationError
from hybrid_router.manifest import FileInfo
from hybrid_router.model_cache import ModelCache

CHUNK = 10
PATH = "alpha/onnx/model.onnx"  # 45 bytes: parts of 12 -> 12, 12, 12, 9


def make(part_bytes: int = 12) -> tuple[ModelCache, FakeStore]:
    m, store = parted(part_bytes)
    return ModelCache(m, store, base_url=BASE, chunk_bytes=CHUNK), store


def test_the_manifest_reads_and_writes_the_parts_of_a_file() -> None:
    m, _ = parted(12)
    info = m.model("alpha").files["onnx/model.onnx"]
    assert [(p.path, p.size) for p in info.parts] == [
        (f"onnx/model.onnx.part{i}", n) for i, n in enumerate([12, 12, 12, 9])
    ]
    assert FileInfo.from_dict(info.to_dict(), "x") == info
    assert m.model("alpha").files["config.json"].parts == ()  # small files stay whole
    assert "parts" not in m.model("alpha").files["config.json"].to_dict()


@pytest.mark.parametrize(
    "parts",
    [
        [{"path": "a.part0", "size": 40, "sha256": "0" * 64}],  # 40 bytes, not 45
        [],
        [{"path": "../a.part0", "size": 45, "sha256": "0" * 64}],
        [{"path": "a.part0", "size": 45, "sha256": "nothex"}],
    ],
)
def test_parts_that_do_not_make_the_file_are_refused(parts: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError, match="models manifest"):
        FileInfo.from_dict({"size": 45, "sha256": "0" * 64, "parts": parts}, "files['a']")


async def test_a_file_in_parts_is_fetched_part_by_part_joined_verified_and_stored() -> None:
    cache, store = make()
    assert PATH not in store.server  # only the parts are served
    data = await cache.match("/models/" + PATH)
    assert data == FILES[PATH]
    assert store.part_requests == [f"{PATH}.part{i}" for i in range(4)]
    assert store.digests == 4 + 1  # each part, then the whole file
    assert store.records_[PATH]["complete"] is True
    assert b"".join(store.chunks[(PATH, i)] for i in range(5)) == FILES[PATH]  # stored as any file
    assert await cache.match("/models/" + PATH) == FILES[PATH]  # then read from the store
    assert len(store.part_requests) == 4


async def test_progress_counts_the_bytes_of_every_part() -> None:
    cache, store = make()
    events: list[dict[str, Any]] = []
    await cache.ensure([("alpha", "fp32")], on_progress=events.append)
    mine = [e["loaded"] for e in events if e.get("file") == "onnx/model.onnx" and e["status"] == "progress"]
    assert mine == sorted(mine) and mine[-1] == 45
    assert any(12 < n < 45 for n in mine)  # counted across the parts, not per part
    total = [e for e in events if e["status"] == "progress_total"]
    assert total[-1]["loaded"] == total[-1]["total"] == 45 + 18


@pytest.mark.parametrize(
    ("damage", "problem"), [("flip", "corrupted"), ("cut", "truncated"), ("extend", "too long")]
)
async def test_a_bad_part_is_refused_with_an_error_naming_the_part(damage: str, problem: str) -> None:
    cache, store = make()
    bad = f"{PATH}.part2"
    body = bytearray(store.server[bad])
    if damage == "flip":
        body[5] ^= 0xFF
    elif damage == "cut":
        del body[-3:]
    else:
        body += b"xyz"
    store.server[bad] = bytes(body)
    with pytest.raises(ModelLoadError) as info:
        await cache.match("/models/" + PATH)
    err = info.value
    assert "part 3 of 4" in err.message and problem in err.message
    assert err.details["part"] == "onnx/model.onnx.part2"
    assert err.details["url"] == BASE + bad
    assert "every part and models_manifest.json" in err.hint
    assert PATH not in store.records_ and not any(k == PATH for k, _ in store.chunks)  # nothing kept


async def test_an_interrupted_download_in_parts_resumes_at_the_part_that_holds_its_first_missing_byte() -> (
    None
):
    cache, store = make()
    # two chunks (20 bytes) stored by an earlier, interrupted download: byte 20 is in part 1 (12..24)
    body = FILES[PATH]
    store.chunks[(PATH, 0)], store.chunks[(PATH, 1)] = body[:10], body[10:20]
    m = cache.resolve("/models/" + PATH)
    assert m is not None
    store.records_[PATH] = {
        "key": PATH,
        "model": "alpha",
        "path": "onnx/model.onnx",
        "size": 45,
        "sha256": m.sha256,
        "chunk_bytes": CHUNK,
        "complete": False,
        "last_used": 1.0,
    }
    assert await cache.match("/models/" + PATH) == body
    assert store.part_requests == [f"{PATH}.part{i}" for i in (1, 2, 3)]  # part 0 came from the store
    assert [e["kind"] for e in cache.events()] == ["resumed"]


async def test_a_site_manifest_with_parts_and_a_server_manifest_without_both_load_the_same_bytes() -> None:
    whole = ModelCache(manifest(), FakeStore(), base_url=BASE, chunk_bytes=CHUNK)
    in_parts, _ = make(7)
    a = await whole.match("/models/" + PATH)
    b = await in_parts.match("/models/" + PATH)
    assert a == b == FILES[PATH]
