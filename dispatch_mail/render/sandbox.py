"""What a template may touch: Jinja2's immutable sandbox, narrowed to the theme's needs.

A theme override is code from the newsletter's repository, and it runs in every
build, preview, check and CI gallery, where SMTP passwords and the unsubscribe
secret live in the environment. So a template reads only the project and issue
models and plain values (text, numbers, dates, lists, mappings), calls only the
methods that cannot change or enlarge anything, gets only the filters and the
global the theme uses, and cannot build a huge value in one expression. Every
refusal is a SecurityError whose message starts "the template is not allowed
to", which render() turns into a one-line error with the template's file and
line. docs/templates.md lists what templates get.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from datetime import date
from typing import Any, NoReturn

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, is_internal_attribute
from jinja2.sandbox import modifies_known_mutable as _mutates

# Bump when what the sandbox compiles into templates changes (the intercepted
# operators): compiled templates are cached between processes, keyed by source only.
SANDBOX_REVISION = 1

# Jinja's own filters that the built-in theme uses; the others are withheld.
BUILTIN_FILTERS = ("default", "join", "length", "map", "max", "min", "trim", "truncate", "upper")

# Names a template author (or a payload) may reach for that templates here do not get:
# Jinja's default globals, and what other frameworks put into every template.
WITHHELD_NAMES = frozenset(
    {"range", "dict", "lipsum", "cycler", "joiner", "namespace"}
    | {"config", "request", "session", "g", "url_for", "get_flashed_messages", "settings"}
    | {"os", "sys", "environ", "env", "builtins", "__builtins__", "import", "open", "eval"}
)

MAX_SIZE = 100_000  # items or characters one `*` may build; the theme's longest is 72
MAX_POWER_BITS = 1024  # how large a number `**` may build
MAX_OUTPUT = 10_000_000  # characters one render may produce (an issue is about 60 KB)

# The methods templates may call on plain values: none changes or enlarges anything.
_TEXT_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper",
        "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rindex",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "striptags", "swapcase", "title", "unescape", "upper",
    }
)  # fmt: skip
_METHODS: dict[str, frozenset[str]] = {
    "text": _TEXT_METHODS,
    "scalar": frozenset(),  # numbers, booleans, None
    "date": frozenset({"isoformat", "isoweekday", "weekday"}),
    "list": frozenset({"count", "index"}),
    "mapping": frozenset({"get", "items", "keys", "values"}),
}
_MODEL_PACKAGE = "dispatch_mail.project."


def _kind(value: object) -> str | None:
    """What a template may do with a value: its kind, or None for a value it may not open."""
    if isinstance(value, str):
        return "text"
    if value is None or isinstance(value, (int, float)):
        return "scalar"
    if isinstance(value, date):
        return "date"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, LoopContext):
        return "loop"
    cls = type(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if cls.__module__.startswith(_MODEL_PACKAGE):
            return "model"  # the project and issue models, and the parsed Markdown of their text
    return None


def _name(value: object) -> str:
    """``a str``, ``an Issue``: the type of ``value`` with its article."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'AEIOUaeiou' else 'a'} {name}"


def refusal(obj: object, attr: str, value: object) -> str | None:
    """Why a template may not read ``obj.attr`` (whose value is ``value``), or None."""
    kind = _kind(obj)
    if kind is None or attr.startswith("_") or is_internal_attribute(obj, attr):
        return f"read {attr!r} of {_name(obj)}"
    if _mutates(obj, attr):
        return f"call {attr!r} on {_name(obj)}: template data is read-only"
    if callable(value):
        bound = isinstance(value, (types.MethodType, types.BuiltinMethodType))
        if bound and getattr(value, "__self__", None) is obj:
            if kind in ("model", "loop") or attr in _METHODS[kind]:
                return None
        return f"call {attr!r} on {_name(obj)}"
    if _kind(value) is None:
        return f"read {attr!r} of {_name(obj)} (it is {_name(value)})"
    return None


def _refuse(what: str) -> NoReturn:
    raise SecurityError(f"the template is not allowed to {what}")


class SandboxUndefined(jinja2.StrictUndefined):
    """StrictUndefined that says so when a name is one templates here are not given."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        name = self._undefined_name
        if self._undefined_hint is None and name in WITHHELD_NAMES:
            if self._undefined_obj is jinja2.utils.missing:
                return (
                    f"the template is not allowed to use {name!r}: templates get only the "
                    "names, filters and methods listed in docs/templates.md"
                )
        return str(super()._undefined_message)


def _withheld_filter(name: str) -> Callable[..., NoReturn]:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        _refuse(f"use the filter {name!r} (docs/templates.md lists the filters)")

    return refuse


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """The environment every template of dispatch renders in."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=SandboxUndefined, **options)
        self.globals.clear()  # range, dict, lipsum, cycler, joiner, namespace
        self.filters = {
            name: (f if name in BUILTIN_FILTERS else _withheld_filter(name))
            for name, f in self.filters.items()
        }

    # -------------------------------------------------------------- reading
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return refusal(obj, attr, value) is None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        _refuse(refusal(obj, attribute, None) or f"read {attribute!r} of {_name(obj)}")

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute``: an attribute if the rules allow it, else a mapping's item."""
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()  # names what is missing
        if _kind(obj) is None:
            _refuse(f"read {attribute!r} of {_name(obj)}")  # not even looked at
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        self._check(obj, attribute, value)
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``obj[argument]``: an item, or for a name, the attribute if the rules allow it."""
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if _kind(obj) is None:
            _refuse(f"read {argument!r} of {_name(obj)}")
        try:
            return obj[argument]
        except (TypeError, LookupError):
            if isinstance(argument, str):
                try:
                    value = getattr(obj, argument)
                except AttributeError:
                    pass
                else:
                    self._check(obj, argument, value)
                    return value
        return self.undefined(obj=obj, name=argument)

    def _check(self, obj: object, attr: str, value: object) -> None:
        why = refusal(obj, attr, value)
        if why is not None:
            _refuse(why)

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format is refused outright: it reads attributes and pads at will

    # -------------------------------------------------------------- computing
    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if not __self.is_safe_callable(__obj):
            _refuse(f"call {_name(__obj)}")
        for arg in (*args, *kwargs.values()):  # a macro calling itself with `s ~ s` doubles
            if isinstance(arg, (str, list, tuple)) and len(arg) > MAX_OUTPUT:
                _refuse(f"pass a value of more than {MAX_OUTPUT} characters or items")
        return __context.call(__obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**`` and ``%``, without a value that would take the machine's memory."""
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and right * abs(left).bit_length() > MAX_POWER_BITS:
                _refuse(f"compute a number of more than {MAX_POWER_BITS} bits with '**'")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > MAX_SIZE:
                        _refuse(f"repeat a text or a list to more than {MAX_SIZE} with '*'")
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_POWER_BITS:
                    _refuse(f"compute a number of more than {MAX_POWER_BITS} bits with '*'")
        elif operator == "%" and isinstance(left, str):
            _refuse("format text with '%' (join text with '~')")
        return self.binop_table[operator](left, right)


def render_bounded(template: jinja2.Template, context: dict[str, Any]) -> str:
    """``template.render(context)``, refused once it has produced MAX_OUTPUT characters."""
    pieces: list[str] = []
    size = 0
    for piece in template.generate(context):
        size += len(piece)
        if size > MAX_OUTPUT:
            _refuse(f"produce more than {MAX_OUTPUT} characters")
        pieces.append(piece)
    return "".join(pieces)
