"""Proto3-JSON reading of a GenerateContentRequest (reference §3.4): both name casings, enums, base64, unknown names."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pybase64

from .errors import ApiError, field_violation

_TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_B64 = re.compile(r"[A-Za-z0-9+/]*")


@dataclass(frozen=True, slots=True)
class Field:
    """One proto field: a scalar kind ("string", "int", "float", "bool", "bytes", "any"), an enum or a message."""

    kind: str | Mapping[str, Field]
    repeated: bool = False
    enum: tuple[str, ...] = ()
    type_name: str = ""


def _enum(type_name: str, *values: str, repeated: bool = False) -> Field:
    return Field("enum", repeated=repeated, enum=values, type_name=_TYPE_PREFIX + type_name)


def _message(type_name: str, fields: Mapping[str, Field], *, repeated: bool = False) -> Field:
    return Field(fields, repeated=repeated, type_name=_TYPE_PREFIX + type_name)


ANY, STRING, INT, FLOAT, BOOL, BYTES = (Field(k) for k in ("any", "string", "int", "float", "bool", "bytes"))

BLOB = {"mime_type": STRING, "data": BYTES}
FILE_DATA = {"mime_type": STRING, "file_uri": STRING}
PART = {
    "text": STRING,
    "inline_data": _message("Blob", BLOB),
    "file_data": _message("FileData", FILE_DATA),
    "thought": BOOL,
    "thought_signature": BYTES,
    **dict.fromkeys(
        (
            "function_call", "function_response", "executable_code", "code_execution_result", "video_metadata",
            "media_resolution", "part_metadata", "tool_call", "tool_response", "audio_transcription",
        ),
        ANY,
    ),
}  # fmt: skip
CONTENT = {"role": STRING, "parts": _message("Part", PART, repeated=True)}
THINKING_CONFIG = {
    "include_thoughts": BOOL,
    "thinking_budget": INT,
    "thinking_level": _enum(
        "ThinkingConfig.ThinkingLevel", "THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"
    ),
}
IMAGE_CONFIG = {"aspect_ratio": STRING, "image_size": STRING}
GENERATION_CONFIG = {
    "stop_sequences": Field("string", repeated=True),
    "response_mime_type": STRING,
    "response_schema": ANY,
    "response_json_schema": ANY,
    "response_modalities": _enum(
        "GenerationConfig.Modality", "MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO", repeated=True
    ),
    "candidate_count": INT,
    "max_output_tokens": INT,
    "temperature": FLOAT,
    "top_p": FLOAT,
    "top_k": INT,
    "seed": INT,
    "presence_penalty": FLOAT,
    "frequency_penalty": FLOAT,
    "response_logprobs": BOOL,
    "logprobs": INT,
    "enable_enhanced_civic_answers": BOOL,
    "speech_config": ANY,
    "audio_transcription_config": ANY,
    "thinking_config": _message("ThinkingConfig", THINKING_CONFIG),
    "image_config": _message("ImageConfig", IMAGE_CONFIG),
    "media_resolution": _enum(
        "GenerationConfig.MediaResolution",
        "MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH",
    ),
}  # fmt: skip
SAFETY_SETTING = {
    "category": _enum(
        "HarmCategory",
        "HARM_CATEGORY_UNSPECIFIED", "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_CIVIC_INTEGRITY",
    ),
    "threshold": _enum(
        "SafetySetting.HarmBlockThreshold",
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED", "BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH",
        "BLOCK_NONE", "OFF",
    ),
}  # fmt: skip
TOOL = dict.fromkeys(
    (
        "function_declarations", "google_search_retrieval", "code_execution", "google_search", "computer_use",
        "url_context", "file_search", "google_maps", "mcp_servers",
    ),
    ANY,
)  # fmt: skip
REQUEST = {
    "model": STRING,
    "contents": _message("Content", CONTENT, repeated=True),
    "system_instruction": _message("Content", CONTENT),
    "tools": _message("Tool", TOOL, repeated=True),
    "tool_config": ANY,
    "safety_settings": _message("SafetySetting", SAFETY_SETTING, repeated=True),
    "generation_config": _message("GenerationConfig", GENERATION_CONFIG),
    "cached_content": STRING,
    "service_tier": ANY,
}


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.capitalize() for word in rest)


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe alphabet, padded or not (proto3 JSON `bytes`)."""
    try:  # the common case, SIMD: standard alphabet, padded, nothing else (the rest takes the general path)
        return pybase64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII character
        pass
    unpadded = text.strip().rstrip("=").replace("-", "+").replace("_", "/")
    if not _B64.fullmatch(unpadded) or len(unpadded) % 4 == 1:
        raise ValueError(text)
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except binascii.Error as e:
        raise ValueError(text) from e


def normalize_request(body: object) -> dict[str, Any]:
    """Return the body with camelCase keys, upper-case enums and decoded bytes, or raise a 400 ApiError."""
    if not isinstance(body, dict):
        raise field_violation("", "Invalid JSON payload received. Expected an object.")
    return _message_value(body, REQUEST, "")


def _message_value(obj: dict[str, Any], fields: Mapping[str, Field], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _field_name(key, fields)
        if name is None:
            where = f" at '{path}'" if path else ""
            raise field_violation(
                path, f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'
            )
        if value is None:
            continue
        field = fields[name]
        child = f"{path}.{name}" if path else name
        if field.repeated:
            if not isinstance(value, list):
                raise _bad_value(child, field, value)
            out[camel(name)] = [_single(item, field, f"{child}[{i}]") for i, item in enumerate(value)]
        elif isinstance(value, list) and field.kind != "any":
            raise field_violation(
                child, "Invalid JSON payload received. Proto field is not repeating, cannot start list."
            )
        else:
            out[camel(name)] = _single(value, field, child)
    return out


def _field_name(key: str, fields: Mapping[str, Field]) -> str | None:
    if key in fields:
        return key
    for name in fields:
        if camel(name) == key:
            return name
    return None


def _single(value: Any, field: Field, path: str) -> Any:
    kind = field.kind
    if not isinstance(kind, str):
        if not isinstance(value, dict):
            raise _bad_value(path, field, value)
        return _message_value(value, kind, path)
    if kind == "any":
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and not isinstance(value, bool):
        number = _number(value)
        if number is not None and number == int(number):
            return int(number)
    if kind == "float" and not isinstance(value, bool):
        number = _number(value)
        if number is not None:
            return number
    if kind == "enum" and isinstance(value, str) and value.upper() in field.enum:
        return value.upper()  # Enum names are compared case-insensitively (docs send "Image", "High").
    if kind == "bytes" and isinstance(value, str):
        try:
            return decode_base64(value)
        except ValueError:
            raise field_violation(
                path, f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{value[:40]}\""
            ) from None
    raise _bad_value(path, field, value)


def _number(value: Any) -> float | None:
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def _bad_value(path: str, field: Field, value: Any) -> ApiError:
    kinds = {
        "string": "TYPE_STRING",
        "int": "TYPE_INT32",
        "float": "TYPE_FLOAT",
        "bool": "TYPE_BOOL",
        "bytes": "TYPE_BYTES",
    }
    type_name = field.type_name or kinds.get(str(field.kind), "TYPE_MESSAGE")
    shown = f'"{value}"' if isinstance(value, str) else str(value)[:60]
    return field_violation(path, f"Invalid value at '{path}' ({type_name}), {shown}")
