"""Build ROS messages and service requests from YAML, as ``ros2 topic pub`` does, without ros2cli.

    msg = message_from_yaml(import_interface("sensor_msgs/msg/JointState"),
                            "{name: [a, b], position: [0.1, 0.2]}")

Any message or service type importable in this Python environment works: the fields are read
from the generated class's ``SLOT_TYPES`` (rosidl's own type description), so nested messages,
fixed-size arrays, bounded and unbounded sequences (of numbers, strings or messages) and
strings are filled and checked against the definition. Every error is an :class:`InputError`
naming the field by its path (``status[0].values[1].key``), what was given and what the type
allows, and for an unknown field the fields that exist.

Two values follow ``ros2 topic pub``: ``now`` for a ``builtin_interfaces/Time`` field is the
current time, and ``auto`` for a ``std_msgs/Header`` is a header stamped now with an empty
frame id (``{header: auto}`` or ``{header: {stamp: now, frame_id: base}}``). The caller passes
the clock (``now_ns``) so a repeating publisher stamps every message afresh.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from rosidl_parser.definition import (
    AbstractNestedType,
    AbstractString,
    AbstractWString,
    Array,
    BasicType,
    BoundedSequence,
    BoundedString,
    BoundedWString,
    NamespacedType,
)

from human_video_policy.errors import InputError

# rosidl integer type names -> (min, max)
_INT_RANGES: dict[str, tuple[int, int]] = {}
for _bits, _names in ((8, ("int8",)), (16, ("int16", "short")), (32, ("int32", "long"))):
    for _name in _names:
        _INT_RANGES[_name] = (-(2 ** (_bits - 1)), 2 ** (_bits - 1) - 1)
for _name in ("int64", "long long"):
    _INT_RANGES[_name] = (-(2**63), 2**63 - 1)
for _bits, _names in (
    (8, ("uint8",)),
    (16, ("uint16", "unsigned short")),
    (32, ("uint32", "unsigned long")),
    (64, ("uint64", "unsigned long long")),
):
    for _name in _names:
        _INT_RANGES[_name] = (0, 2**_bits - 1)
_FLOAT_LIMITS = {"float": 3.4028234663852886e38, "double": math.inf, "long double": math.inf}
_KINDS = ("msg", "srv")


def normalize_type_name(type_name: str, kind: str) -> str:
    """``std_srvs/Trigger`` -> ``std_srvs/srv/Trigger`` (``kind`` msg or srv); full names pass."""
    parts = type_name.strip().strip("/").split("/")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/{kind}/{parts[1]}"
    if len(parts) == 3 and all(parts) and parts[1] in _KINDS:
        return "/".join(parts)
    raise InputError(
        f"type {type_name!r} is invalid: write package/{kind}/Name (or package/Name), e.g. "
        + ("std_msgs/msg/Bool" if kind == "msg" else "std_srvs/srv/Trigger")
    )


def import_interface(type_name: str, kind: str = "msg") -> type:
    """The Python class of a message (``kind`` msg) or service (srv) type, or InputError saying
    why it cannot be imported."""
    if kind not in _KINDS:
        raise InputError(f"kind={kind!r} is invalid: must be one of {list(_KINDS)}")
    full = normalize_type_name(type_name, kind)
    package, sub, name = full.split("/")
    if sub != kind:
        raise InputError(f"type {full} is a {sub}, not a {kind}")
    try:
        module = importlib.import_module(f"{package}.{sub}")
    except ImportError as exc:
        if importlib.util.find_spec(package) is not None:
            other = "srv" if sub == "msg" else "msg"
            raise InputError(
                f"type {full}: the package {package} has no {sub} types (is it a {other}? "
                f"then use {package}/{other}/{name})"
            ) from exc
        raise InputError(
            f"type {full}: the package {package} is not importable in this Python ({exc}); "
            f"install its interfaces (e.g. pip install ros-jazzy-{package.replace('_', '-')})"
        ) from exc
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        found = sorted(n for n in dir(module) if n[:1].isupper() and not n.startswith("_"))
        raise InputError(f"type {full}: {package}.{sub} has no {name}; it has {found}")
    if kind == "srv" and not (hasattr(cls, "Request") and hasattr(cls, "Response")):
        raise InputError(f"type {full} is not a service type (no Request/Response)")
    if kind == "msg" and not hasattr(cls, "get_fields_and_field_types"):
        raise InputError(f"type {full} is not a message type")
    return cls


def type_name_of(message_class: type) -> str:
    """``sensor_msgs.msg._image.Image`` -> ``sensor_msgs/msg/Image``."""
    module = message_class.__module__.split(".")
    return f"{module[0]}/{module[1]}/{message_class.__name__}"


def parse_values(text: str | None) -> dict[str, Any]:
    """The YAML of a message's fields (``'{data: true}'`` or ``'data: true'``); empty = {}."""
    if text is None or not text.strip():
        return {}
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"values {text!r} are not valid YAML: {exc}") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(
            f"values {text!r} must be a YAML mapping of field names, e.g. '{{data: true}}'; "
            f"got a {type(values).__name__}"
        )
    return values


def message_from_yaml(
    message_class: type, text: str | None, now_ns: Callable[[], int] | None = None
) -> Any:
    """A new ``message_class`` instance with the fields given as YAML text."""
    return fill_message(message_class(), parse_values(text), now_ns=now_ns)


def fill_message(
    msg: Any, values: Mapping[str, Any], path: str = "", now_ns: Callable[[], int] | None = None
) -> Any:
    """Set ``msg``'s fields from ``values`` (a mapping, nested for nested messages)."""
    if not isinstance(values, Mapping):
        raise InputError(
            f"{_where(path)}: a {type_name_of(type(msg))} needs a mapping of its fields, got "
            f"{_show(values)}"
        )
    fields = list(msg.get_fields_and_field_types())
    slots = dict(zip(fields, type(msg).SLOT_TYPES, strict=True))
    for name, value in values.items():
        field_path = f"{path}.{name}" if path else str(name)
        if name not in slots:
            raise InputError(
                f"field {field_path!r} does not exist in {type_name_of(type(msg))}; its fields "
                f"are {fields}"
            )
        current = getattr(msg, name)
        converted = _convert(slots[name], value, field_path, current, now_ns)
        try:
            setattr(msg, name, converted)
        except (AssertionError, TypeError, ValueError) as exc:  # rclpy's own checks
            raise InputError(
                f"field {field_path!r}: {_show(value)} is not accepted: {exc}"
            ) from exc
    return msg


def _convert(
    slot: Any, value: Any, path: str, current: Any, now_ns: Callable[[], int] | None
) -> Any:
    if isinstance(slot, NamespacedType):
        return _nested(slot, value, path, current, now_ns)
    if isinstance(slot, AbstractNestedType):
        return _sequence(slot, value, path, now_ns)
    return _basic(slot, value, path)


def _nested(
    slot: NamespacedType, value: Any, path: str, current: Any, now_ns: Callable[[], int] | None
) -> Any:
    full = "/".join([*slot.namespaces, slot.name])
    msg = current if current is not None else _class_of(slot)()
    clock = now_ns or time.time_ns
    if full == "builtin_interfaces/msg/Time" and value == "now":
        stamp = clock()
        msg.sec, msg.nanosec = divmod(stamp, 1_000_000_000)
        return msg
    if full == "std_msgs/msg/Header" and value == "auto":
        return fill_message(msg, {"stamp": "now"}, path, now_ns)
    if not isinstance(value, Mapping):
        extra = {
            "builtin_interfaces/msg/Time": " (or now)",
            "std_msgs/msg/Header": " (or auto)",
        }.get(full, "")
        raise InputError(
            f"field {path!r} is a {full}: give a mapping of its fields {list(_fields_of(slot))}"
            f"{extra}, got {_show(value)}"
        )
    return fill_message(msg, value, path, now_ns)


def _sequence(
    slot: AbstractNestedType, value: Any, path: str, now_ns: Callable[[], int] | None
) -> Any:
    element = slot.value_type
    if isinstance(value, (bytes, bytearray)) and _is_byte_like(element):
        items: list[Any] = list(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise InputError(f"field {path!r} is {_describe(slot)}: give a list, got {_show(value)}")
    if isinstance(slot, Array) and len(items) != slot.size:
        raise InputError(
            f"field {path!r} is {_describe(slot)}: needs exactly {slot.size} values, got "
            f"{len(items)}"
        )
    if isinstance(slot, BoundedSequence) and len(items) > slot.maximum_size:
        raise InputError(
            f"field {path!r} is {_describe(slot)}: at most {slot.maximum_size} values, got "
            f"{len(items)}"
        )
    out = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if isinstance(element, NamespacedType):
            out.append(_nested(element, item, item_path, None, now_ns))
        else:
            out.append(_basic(element, item, item_path))
    return out


def _is_byte_like(element: Any) -> bool:
    return isinstance(element, BasicType) and element.typename in ("octet", "uint8", "int8")


def _basic(slot: Any, value: Any, path: str) -> Any:
    if isinstance(slot, (AbstractString, AbstractWString)):
        if isinstance(value, (dict, list, tuple)) or value is None:
            raise InputError(f"field {path!r} is a string: got {_show(value)}")
        text = value if isinstance(value, str) else _yaml_scalar(value)
        limit = getattr(slot, "maximum_size", None)
        if isinstance(slot, (BoundedString, BoundedWString)) and len(text) > int(limit):
            raise InputError(f"field {path!r} is a string of at most {limit} characters")
        return text
    typename = slot.typename
    if typename == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InputError(f"field {path!r} is a boolean: give true or false, got {_show(value)}")
    if typename in ("char", "wchar"):
        if isinstance(value, str) and len(value) == 1:
            return value
        raise InputError(f"field {path!r} is a {typename}: give one character, got {_show(value)}")
    if typename == "octet":
        if isinstance(value, (bytes, bytearray)) and len(value) == 1:
            return bytes(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
            return bytes([value])
        raise InputError(f"field {path!r} is a byte: give an integer 0..255, got {_show(value)}")
    if typename in _INT_RANGES:
        low, high = _INT_RANGES[typename]
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise InputError(
                    f"field {path!r} is an integer ({typename}, {low}..{high}): got {_show(value)}"
                )
        if not low <= value <= high:
            raise InputError(f"field {path!r} is {typename}: {value} is out of range {low}..{high}")
        return value
    if typename in _FLOAT_LIMITS:
        if isinstance(value, str) and value.strip().lower() in ("nan", ".nan", "inf", "-inf"):
            value = float(value.strip().lstrip("."))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"field {path!r} is a number ({typename}): got {_show(value)}")
        number = float(value)
        if math.isfinite(number) and abs(number) > _FLOAT_LIMITS[typename]:
            raise InputError(f"field {path!r} is a {typename}: {number} is out of its range")
        return number
    raise InputError(f"field {path!r}: type {typename} is not supported")  # pragma: no cover


def _class_of(slot: NamespacedType) -> type:
    module = importlib.import_module(".".join(slot.namespaces))
    return getattr(module, slot.name)


def _fields_of(slot: NamespacedType) -> list[str]:
    return list(_class_of(slot).get_fields_and_field_types())


def _describe(slot: AbstractNestedType) -> str:
    element = slot.value_type
    if isinstance(element, NamespacedType):
        name = "/".join([*element.namespaces, element.name])
    elif isinstance(element, (AbstractString, AbstractWString)):
        name = "string"
    else:
        name = element.typename
    if isinstance(slot, Array):
        return f"{name}[{slot.size}]"
    if isinstance(slot, BoundedSequence):
        return f"{name}[<={slot.maximum_size}]"
    return f"{name}[]"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(path: str) -> str:
    return f"field {path!r}" if path else "the message"
