"""Sessions on disk: contents stored with images in the blob store, and the bounded history sent back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.gemini.parts import Content, Part, b64_length, b64decode_any, b64encode
from bot.store.base import Store, TurnRow

_BLOB_REF = re.compile(r'"blob":"([0-9a-f]{64})"')


async def save_content(store: Store, content: Content) -> str:
    """Content JSON for the store: image bytes go to the blob store, signatures stay inline (base64, exact)."""
    parts: list[dict[str, Any]] = []
    for part in content.parts:
        wire: dict[str, Any] = {}
        if part.data is not None:
            mime = part.mime_type or "application/octet-stream"
            wire["blob"] = await store.put_blob(part.data, mime)
            wire["mimeType"] = mime
        else:
            wire["text"] = part.text or ""
        if part.thought:
            wire["thought"] = True
        if part.signature is not None:
            wire["thoughtSignature"] = b64encode(part.signature)
        parts.append(wire)
    return json.dumps({"role": content.role, "parts": parts}, separators=(",", ":"))


async def load_content(store: Store, raw: str) -> Content:
    """The stored content with its images read back from the blob store."""
    wire = json.loads(raw)
    parts: list[Part] = []
    for item in wire.get("parts") or ():
        signature = b64decode_any(item["thoughtSignature"]) if item.get("thoughtSignature") else None
        thought = bool(item.get("thought", False))
        if "blob" in item:
            blob = await store.get_blob(item["blob"])
            if blob is None:
                raise LookupError(f"image {item['blob'][:12]} is missing from the blob store")
            parts.append(Part(mime_type=blob[1], data=blob[0], thought=thought, signature=signature))
        else:
            parts.append(Part(text=item.get("text", ""), thought=thought, signature=signature))
    return Content(role=wire["role"], parts=tuple(parts))


def blob_refs(raw: str | None) -> list[str]:
    """sha256 ids of the images a stored content refers to, in order."""
    return _BLOB_REF.findall(raw or "")


def final_image_refs(raw: str | None) -> list[str]:
    """Blob ids of the non-thought images of a stored model content: what the user was shown."""
    if not raw:
        return []
    return [p["blob"] for p in json.loads(raw).get("parts") or () if "blob" in p and not p.get("thought")]


@dataclass(frozen=True, slots=True)
class History:
    """What to send before the new user turn, and images to carry over when the model changed."""

    contents: tuple[Content, ...]
    carried: tuple[tuple[bytes, str], ...] = ()
    turns: int = 0


def wire_size(content: Content) -> int:
    """Bytes the content takes in a request body (base64 images, signatures), within a few per part."""
    size = 24
    for part in content.parts:
        size += 40 + len((part.text or "").encode())
        if part.data is not None:
            size += b64_length(len(part.data)) + len(part.mime_type or "")
        if part.signature is not None:
            size += b64_length(len(part.signature)) + 20
    return size


def stored_wire_size(raw: str, sizes: dict[str, int]) -> int:
    """`wire_size` of a stored content, worked out from its JSON and its blobs' sizes without reading an image.
    An unknown blob counts as empty (loading the content then says it is missing)."""
    wire = json.loads(raw) if raw else {}
    size = 24
    for item in wire.get("parts") or ():
        size += 40
        if "blob" in item:
            size += b64_length(sizes.get(item["blob"], 0)) + len(item.get("mimeType") or "")
        else:
            size += len((item.get("text") or "").encode())
        if item.get("thoughtSignature"):
            size += len(item["thoughtSignature"]) + 20  # kept as base64 already
    return size


async def build_history(
    store: Store, *, parent: TurnRow | None, model: str, keep: int, budget: int | None = None
) -> History:
    """The session's first turn plus the last `keep` turns of the branch ending at `parent`, within `budget` bytes.

    Signatures belong to the model that made them: only turns made by `model` are sent, the run of them next to
    the parent and, once that run fills `keep`, the session's first turn if `model` made it (across another model's
    turns as across the turns `keep` leaves out: it holds what the session began from). When the parent came from
    another model, its images start a fresh request as references instead.
    The parent is always sent; then the first turn, then older turns newest first, while they fit the budget
    (every turn re-sends its images: 2K and 4K sessions would pass the API's request limit within a few turns).
    A turn's size comes from its stored JSON and its blobs' sizes, so the images of a turn left out are never read.
    """
    if parent is None or parent.response_json is None or parent.status != "done":
        return History(())
    if parent.model != model:
        carried = [await store.get_blob(ref) for ref in final_image_refs(parent.response_json)]
        return History((), tuple(blob for blob in carried if blob is not None))
    chain: list[TurnRow] = []
    for turn in await store.ancestors(parent.id, limit=max(keep, 1)):
        if turn.model != model or turn.response_json is None or turn.status != "done":
            break
        chain.append(turn)
    if len(chain) == max(keep, 1) and chain[-1].parent_id is not None:
        root = await store.root_of(parent.id)
        if root is not None and root.model == model and root.response_json is not None and root.status == "done":
            chain.append(root)
    if len(chain) > 2 and chain[-1].parent_id is None:
        chain.insert(1, chain.pop())  # the first turn is second in line for the budget, first in the request
    sizes = await store.blob_sizes([ref for turn in chain for ref in _refs(turn)])
    sent: dict[str, tuple[Content, Content]] = {}
    used = 0
    for turn in chain:
        size = stored_wire_size(turn.request_json, sizes) + stored_wire_size(turn.response_json or "", sizes)
        if sent and budget is not None and used + size > budget:
            if turn.parent_id is None:
                continue  # the first turn doesn't fit: the recent ones still may
            break
        request = await load_content(store, turn.request_json)
        sent[turn.id] = (request, await load_content(store, turn.response_json or ""))
        used += size
    contents = [content for turn in _chronological(chain, sent) for content in sent[turn.id]]
    return History(tuple(contents), turns=len(sent))


def _refs(turn: TurnRow) -> list[str]:
    return blob_refs(turn.request_json) + blob_refs(turn.response_json)


def _chronological(chain: list[TurnRow], sent: dict[str, tuple[Content, Content]]) -> list[TurnRow]:
    """The sent turns oldest first: the root (if sent) and then the rest of the chain in reverse."""
    kept = [turn for turn in chain if turn.id in sent]
    roots = [turn for turn in kept if turn.parent_id is None]
    rest = [turn for turn in kept if turn.parent_id is not None]
    return roots + list(reversed(rest))
