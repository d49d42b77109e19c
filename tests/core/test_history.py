"""What a session sends back: the parent always, then the first turn, then recent turns, within a byte budget."""

from __future__ import annotations

import json
import sqlite3

from bot.catalog import FLASH_31, PRO_3
from bot.services import Services
from bot.sessions import blob_refs, build_history, load_content, stored_wire_size, wire_size
from bot.store.sqlite import SqliteStore, images_path
from tests.fakes.chat import BytesImage

from .conftest import Run, png_bytes


async def _session(run: Run, services: Services, turns: int) -> list[str]:
    """Turn ids oldest first; the first turn carries a big reference photo, the rest are text edits."""
    [first] = await run("imagine", "a lighthouse", images=(BytesImage(png_bytes(900, 900)),))
    ids = [first.receipts[0]]
    for step in range(2, turns + 1):
        [reply] = await run("imagine", f"step {step}")
        assert not reply.error, reply.text
        ids.append(reply.receipts[0])
    return ids


async def _pair_size(services: Services, turn_id: str) -> int:
    [turn] = await services.store.ancestors(turn_id, limit=1)
    request = await load_content(services.store, turn.request_json)
    response = await load_content(services.store, turn.response_json or "")
    return wire_size(request) + wire_size(response)


async def _sent(services: Services, parent_id: str, *, keep: int, budget: int | None) -> list[str]:
    [parent] = await services.store.ancestors(parent_id, limit=1)
    history = await build_history(services.store, parent=parent, model=FLASH_31.id, keep=keep, budget=budget)
    return [c.parts[-1].text or "" for c in history.contents if c.role == "user"]


async def test_without_a_budget_the_first_turn_and_the_last_turns_are_sent(run, services) -> None:
    ids = await _session(run, services, 6)
    assert await _sent(services, ids[-1], keep=3, budget=None) == ["a lighthouse", "step 4", "step 5", "step 6"]


async def test_the_budget_drops_older_turns_first_but_keeps_the_first_turn_while_it_fits(run, services) -> None:
    ids = await _session(run, services, 6)
    parent, root, previous = [await _pair_size(services, i) for i in (ids[-1], ids[0], ids[-2])]
    assert await _sent(services, ids[-1], keep=3, budget=parent + root + previous) == [
        "a lighthouse",
        "step 5",
        "step 6",
    ]
    assert await _sent(services, ids[-1], keep=3, budget=parent + root) == ["a lighthouse", "step 6"]


async def test_a_first_turn_too_big_for_the_budget_gives_way_to_recent_turns(run, services) -> None:
    ids = await _session(run, services, 6)
    parent, root, previous = [await _pair_size(services, i) for i in (ids[-1], ids[0], ids[-2])]
    assert root > previous  # the reference photo
    assert await _sent(services, ids[-1], keep=3, budget=parent + previous) == ["step 5", "step 6"]


async def test_the_first_turn_of_this_model_is_sent_across_another_models_turns(run, services, fake_gemini) -> None:
    await run("imagine", "a lighthouse", model=FLASH_31.id)
    await run("imagine", "in oils", model=PRO_3.id)  # its signatures are Pro's: never sent to Flash
    for step in range(1, 5):
        await run("imagine", f"step {step}", model=FLASH_31.id)

    body = fake_gemini.requests[-1].body
    texts = [c["parts"][-1].get("text") for c in body["contents"] if c["role"] == "user"]
    assert texts == ["a lighthouse", "step 1", "step 2", "step 3", "step 4"]  # history_turns=3, then the new turn
    assert fake_gemini.requests[-1].status == 200  # Flash took back its own signatures


async def test_the_parent_is_sent_even_over_budget(run, services) -> None:
    ids = await _session(run, services, 3)
    assert await _sent(services, ids[-1], keep=3, budget=1) == ["step 3"]


async def test_the_engine_keeps_each_request_under_the_configured_size(make_services, run, fake_gemini) -> None:
    fake_gemini.noise = True  # large PNGs: every turn sends back ~1 MB images
    services = await make_services(max_request_mb=10.0, history_turns=6)
    for step in range(1, 7):
        inv_text = "a lighthouse" if step == 1 else f"step {step}"
        [reply] = await run("imagine", inv_text, on=services)
        assert not reply.error, reply.text
    sizes = [len(json.dumps(request.body)) for request in fake_gemini.requests]
    assert max(sizes) <= 10 * 1024 * 1024
    texts = [c["parts"][-1].get("text") for c in fake_gemini.requests[-1].body["contents"] if c["role"] == "user"]
    assert texts == ["a lighthouse", "step 5", "step 6"]  # 5 earlier turns fit the count; the budget took 3 out


async def test_a_turns_size_is_known_from_the_store_without_its_images(run, services) -> None:
    ids = await _session(run, services, 3)
    turns = await services.store.ancestors(ids[-1], limit=3)
    raws = [raw for turn in turns for raw in (turn.request_json, turn.response_json or "")]
    sizes = await services.store.blob_sizes([ref for raw in raws for ref in blob_refs(raw)])
    assert any('"thoughtSignature"' in raw for raw in raws) and len(sizes) >= 4  # signatures and images both count
    for raw in raws:
        assert stored_wire_size(raw, sizes) == wire_size(await load_content(services.store, raw))


async def test_the_images_of_a_turn_left_out_by_the_budget_are_never_read(run, services) -> None:
    ids = await _session(run, services, 6)
    parent, root = [await _pair_size(services, i) for i in (ids[-1], ids[0])]
    [left_out] = await services.store.ancestors(ids[-2], limit=1)
    assert isinstance(services.store, SqliteStore)
    with sqlite3.connect(images_path(services.store.path) or "") as images:  # its image is gone from disk
        for ref in blob_refs(left_out.response_json):
            images.execute("DELETE FROM blobs WHERE sha256 = ?", (ref,))
    assert await _sent(services, ids[-1], keep=3, budget=parent + root) == ["a lighthouse", "step 6"]
