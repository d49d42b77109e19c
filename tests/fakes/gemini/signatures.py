"""Thought signatures (reference §5.2, §6): issue opaque bytes per model, then demand them back on model turns."""

from __future__ import annotations

import base64
import os
import secrets
from typing import Any

from .errors import invalid
from .models import ModelSpec
from .request import ImageRequest

# Leading bytes whose standard base64 is "+/+/": the SDK resends signatures URL-safe ("-_-_"), so a fake that
# compared strings instead of decoded bytes would fail every multi-turn test.
_MARKER = b"\xfb\xff\xbf"


class SignatureBook:
    """Every signature this fake issued, with the canonical model that issued it (signatures are model-specific)."""

    def __init__(self) -> None:
        self.issued: dict[bytes, str] = {}

    def issue(self, spec: ModelSpec) -> str:
        raw = _MARKER + os.urandom(45 + secrets.randbelow(48))
        self.issued[raw] = spec.id
        return base64.b64encode(raw).decode("ascii")

    def sign(self, parts: list[dict[str, Any]], spec: ModelSpec) -> None:
        """Sign the first non-thought part and every non-thought image, in place (none for unsigned models)."""
        if not spec.signed:
            return
        first = True
        for part in parts:
            if part.get("thought"):
                continue
            if first or "inlineData" in part:
                part["thoughtSignature"] = self.issue(spec)
            first = False

    def check(self, req: ImageRequest, spec: ModelSpec) -> None:
        """Raise the Developer API's 400 for the first model-turn part that lacks a valid signature."""
        for content in req.contents:
            if content.role != "model":
                continue
            first = True
            for part in content.parts:
                if part.thought:
                    continue
                needs = first or (part.data is not None and part.is_image)
                first = False
                if not needs:
                    continue
                if part.signature is None:
                    raise invalid(
                        f"{part.kind} part is missing a thought_signature in content position {content.index + 1}, "
                        f"part position {part.index + 1}.{spec.signature_error_suffix}"
                    )
                if self.issued.get(part.signature) != spec.id:
                    raise invalid("Corrupted thought signature.")
