"""Sessions on disk: contents stored with images in the blob store, and the bounded history sent back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.gemini.parts import Content, Part, b64decode_any, b64encode
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


async def build_history(store: Store, *, parent: TurnRow | None, model: str, keep: int) -> History:
    """The session's first turn plus the last `keep` turns of the branch ending at `parent`.

    Signatures belong to the model that made them: only the run of turns made by `model` next to the parent is
    sent. When the parent came from another model, its images start a fresh request as references instead.
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
    contents: list[Content] = []
    for turn in reversed(chain):
        contents.append(await load_content(store, turn.request_json))
        contents.append(await load_content(store, turn.response_json or ""))
    return History(tuple(contents), turns=len(chain))
